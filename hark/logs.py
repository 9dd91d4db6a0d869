"""Structured logs: one JSON object per line, with every field a caller passed in `extra`
(job id, stage, reason code, counts…), so a log search can filter on any of them."""

from __future__ import annotations

import json
import logging
import sys
import time

# What every LogRecord carries of its own; anything else on a record came from `extra`. Computed
# from a blank record so fields a newer Python adds are not mistaken for a caller's.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# The formatter's own keys: an `extra` field of the same name is kept under "extra_<name>".
_OWN = ("ts", "level", "logger", "msg", "exc")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[f"extra_{key}" if key in _OWN else key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
