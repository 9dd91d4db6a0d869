"""Fault injection for chaos tests and drills: make a kind of model work fail on chosen segments.

`HARK_FAULT_INJECTION` lists rules `<kind>:<raise|crash>@<segment idx>`, comma-separated, e.g.
`asr:raise@2,embed:crash@4`: the ASR of segment 2 raises, and the embedding of segment 4 kills its
worker process outright (as a segfault or the OOM killer would). Empty, the default, injects nothing.
It exists so the poison-segment path is exercised with real workers, not only with fakes.
"""

from __future__ import annotations

import os
import signal
from functools import lru_cache

from worker.engines.base import SegmentAudio


class InjectedFault(RuntimeError):
    pass


@lru_cache(maxsize=4)
def _rules(spec: str) -> frozenset[tuple[str, str, int]]:
    rules = set()
    for item in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, rest = item.partition(":")
        action, _, idx = rest.partition("@")
        if action not in ("raise", "crash") or not idx.isdigit():
            raise ValueError(f"bad fault rule {item!r}: use <kind>:<raise|crash>@<segment idx>")
        rules.add((kind, action, int(idx)))
    return frozenset(rules)


def before_run(spec: str, kind: str, batch: list[SegmentAudio]) -> None:
    """Apply the rules that match this batch (called just before the engine runs it)."""
    if not spec:
        return
    for rule_kind, action, idx in _rules(spec):
        if rule_kind == kind and any(seg.idx == idx for seg in batch):
            if action == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            raise InjectedFault(f"injected fault: {kind} of segment {idx}")
