"""The JSON log formatter keeps every `extra` field a caller passes."""

from __future__ import annotations

import json
import logging
import uuid

from hark.logs import JsonFormatter


def _line(logger: logging.Logger, *args: object, **kwargs: object) -> dict[str, object]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
    (record,) = records
    return json.loads(JsonFormatter().format(record))


def test_every_extra_field_is_kept_as_json() -> None:
    log = logging.getLogger("hark.test.logs")
    job = uuid.uuid4()
    entry = _line(
        log,
        "sweep %s",
        "done",
        extra={"job_id": job, "uploads": 3, "orphans": 0, "delivery": {"id": 7}, "attempt": 2, "level": "clash"},
    )
    assert entry["msg"] == "sweep done" and entry["level"] == "warning" and entry["logger"] == "hark.test.logs"
    assert entry["job_id"] == str(job)  # not JSON-native: written as its str()
    assert (entry["uploads"], entry["orphans"], entry["attempt"]) == (3, 0, 2)
    assert entry["delivery"] == {"id": 7}
    assert entry["extra_level"] == "clash"  # a field named like one of the formatter's own keys keeps both


def test_standard_record_attributes_stay_out() -> None:
    entry = _line(logging.getLogger("hark.test.logs"), "plain")
    assert set(entry) == {"ts", "level", "logger", "msg"}
