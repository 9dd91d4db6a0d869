"""Appending a benchmark result to BENCHMARKS.md with date, machine and commit."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()}"


def commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(title: str, lines: list[str]) -> None:
    """Print the result and append it as a section of BENCHMARKS.md."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = [f"### {title}", f"{stamp} · {machine()} · commit {commit()}", "", *lines, ""]
    print("\n".join(section))
    path = ROOT / "BENCHMARKS.md"
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by the scripts in `bench/`; newest last.\n\n")
    with path.open("a") as f:
        f.write("\n".join(section) + "\n")


def report(title: str, lines: list[str], keep: bool) -> None:
    """Print a result; with `keep` (the scripts' --record) also append it to BENCHMARKS.md."""
    if keep:
        record(title, lines)
    else:
        print("\n".join(lines))
