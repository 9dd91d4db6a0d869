"""Writing a benchmark result into BENCHMARKS.md with date, machine and commit: today's figures, so a
new result replaces the section of the same title instead of piling up beside it."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """Cores, CPU and memory. Virtual machines often name the CPU only by its brand ("AMD EPYC"
    for Zen 3 and Zen 5 alike, which ran Whisper at half and at full speed here), so the family
    and model numbers and whether it has AVX-512 are added."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get("model name", "unknown CPU")
    if "cpu family" in info:
        avx512 = "AVX-512" if "avx512f" in info.get("flags", "").split() else "no AVX-512"
        cpu += f", family {info['cpu family']} model {info.get('model', '?')}, {avx512}"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()}"


def commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(title: str, lines: list[str]) -> None:
    """Print the result and write it as a section of BENCHMARKS.md, replacing one of the same title."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"### {title}"
    section = "\n".join([heading, f"{stamp} · {machine()} · commit {commit()}", "", *lines, ""])
    print(section)
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n#", start + len(heading))
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    path.write_text(text)


def report(title: str, lines: list[str], keep: bool) -> None:
    """Print a result; with `keep` (the scripts' --record) also append it to BENCHMARKS.md."""
    if keep:
        record(title, lines)
    else:
        print("\n".join(lines))
