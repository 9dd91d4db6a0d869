"""Progress bars for the command line: one line per job (upload bytes, then audio seconds processed)
and an overall line. On a terminal the block is redrawn in place; in a log or CI only lines that
changed are printed, so a night's archive does not flood the output."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from hark.status import FINAL, JobStatus

BAR = 24


def bar(fraction: float, width: int = BAR) -> str:
    fraction = min(1.0, max(0.0, fraction))
    full = int(fraction * width)
    return "█" * full + "·" * (width - full)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@dataclass
class Row:
    """What is known about one recording: its upload, then its job."""

    name: str
    size: int
    sent: int = 0
    job: dict | None = None
    note: str = ""

    def audio(self) -> tuple[float, float]:
        """(seconds of audio done, seconds in all), as the job's progress reports them."""
        p = (self.job or {}).get("progress") or {}
        total = p.get("audio_s_total") or (self.job or {}).get("duration_s") or 0.0
        if (self.job or {}).get("status") == JobStatus.DONE:
            return float(total), float(total)
        return float(p.get("audio_s_done") or 0.0), float(total)

    def key(self) -> str:
        """The coarse state (stage and bar), which decides when a log line is worth printing."""
        if self.job is None:
            return "upload " + bar(self.sent / self.size if self.size else 0.0)
        frac = (
            1.0
            if self.job.get("status") == JobStatus.DONE
            else float((self.job.get("progress") or {}).get("fraction") or 0.0)
        )
        return f"{self.job.get('status')} {bar(frac)}"

    def line(self, width: int) -> str:
        name = self.name if len(self.name) <= width else "…" + self.name[-(width - 1) :]
        if self.job is None:
            frac = self.sent / self.size if self.size else 0.0
            return (
                f"{name:<{width}} upload     {bar(frac)} {human_bytes(self.sent)}/{human_bytes(self.size)} {self.note}"
            )
        job = self.job
        status = job.get("status", "?")
        p = job.get("progress") or {}
        done, total = self.audio()
        frac = 1.0 if status == JobStatus.DONE else float(p.get("fraction") or 0.0)
        eta = f" ETA {clock(p.get('eta_s'))}" if p.get("eta_s") is not None and status not in FINAL else ""
        err = f" {job['error']['code']}" if job.get("error") else ""
        return f"{name:<{width}} {status:<10} {bar(frac)} {clock(done)}/{clock(total)} audio{eta}{err}"


@dataclass
class Board:
    rows: list[Row]
    out: TextIO = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    _drawn: int = 0
    _last: dict[int, str] = field(default_factory=dict)  # what was last printed per row, off a terminal

    def summary(self) -> str:
        finished = sum(1 for r in self.rows if r.job and r.job.get("status") in FINAL)
        sent = sum(r.sent for r in self.rows)
        size = sum(r.size for r in self.rows) or 1
        audio_done = sum(r.audio()[0] for r in self.rows)
        audio_total = sum(r.audio()[1] for r in self.rows)
        return (
            f"{'all':<{self.width}} {finished}/{len(self.rows)} finished  upload {bar(sent / size, 12)}  "
            f"audio {clock(audio_done)}/{clock(audio_total)}  [{time.monotonic() - self.started:.0f} s]"
        )

    @property
    def width(self) -> int:
        return min(40, max([len(r.name) for r in self.rows] + [3]))

    def draw(self) -> None:
        lines = [r.line(self.width) for r in self.rows] + [self.summary()]
        if self.out.isatty():
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F")
            for line in lines:
                self.out.write("\x1b[2K" + line + "\n")
            self._drawn = len(lines)
        else:
            for i, (row, line) in enumerate(zip(self.rows, lines)):
                if self._last.get(i) != row.key():
                    self.out.write(line + "\n")
                    self._last[i] = row.key()
        self.out.flush()

    def finish(self) -> None:
        if not self.out.isatty():
            self.out.write(self.summary() + "\n")
        self.out.flush()
