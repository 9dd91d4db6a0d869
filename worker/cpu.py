"""What this machine's CPU is, for engine choices that depend on it (read from /proc/cpuinfo).

How many Whisper clips go through one forward pass was measured to flip between CPUs: CTranslate2
runs on Intel MKL on Intel CPUs and on oneDNN elsewhere, and the best batch differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    vendor: str
    flags: frozenset[str]

    @property
    def intel(self) -> bool:
        return self.vendor == "GenuineIntel"


def read_cpuinfo(path: Path = CPUINFO) -> CpuInfo:
    """The first processor's vendor and flags; an unknown CPU (no such file) has neither."""
    vendor, flags = "", frozenset[str]()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return CpuInfo(vendor, flags)
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return CpuInfo(vendor, flags)


@lru_cache(maxsize=1)
def this_cpu() -> CpuInfo:
    return read_cpuinfo()
