"""Wall and CPU seconds per part of a task, for `jobs.timings`.

Each part costs two clock reads at its start and two at its end, so a task can time every step
(S3, database, model) without slowing down. CPU seconds are the process's (all its threads): a
pool process runs one task at a time, so they belong to the task. The parts are summed into the
job's timings under `<name>_s` and `<name>_cpu_s`; tasks of one job that run in parallel add up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Clock:
    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def part(self, name: str, cpu: bool = False) -> Iterator[None]:
        """Time the block as `name`; with `cpu`, also its CPU seconds."""
        wall0, cpu0 = time.monotonic(), time.process_time() if cpu else 0.0
        try:
            yield
        finally:
            self.add(name, time.monotonic() - wall0, time.process_time() - cpu0 if cpu else None)

    def add(self, name: str, wall: float, cpu: float | None = None) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        if cpu is not None:
            self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    def merged(self, timings: dict | None) -> dict:
        """A copy of `timings` with this clock's parts added to what is already there."""
        out = dict(timings or {})
        for name, value in self.wall.items():
            out[f"{name}_s"] = round(out.get(f"{name}_s", 0.0) + value, 3)
        for name, value in self.cpu.items():
            out[f"{name}_cpu_s"] = round(out.get(f"{name}_cpu_s", 0.0) + value, 3)
        return out
