"""Which company made this machine's CPU (from /proc/cpuinfo), for engine choices that depend on it.

How many Whisper clips should go through one forward pass differs between CPUs: CTranslate2 runs
on Intel MKL on Intel CPUs and on oneDNN elsewhere, and the two favour different batch sizes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def read_vendor(path: Path = CPUINFO) -> str:
    """The first processor's `vendor_id` (e.g. GenuineIntel, AuthenticAMD); "" when unknown."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "vendor_id":
            return value.strip()
    return ""


@lru_cache(maxsize=1)
def intel_cpu() -> bool:
    return read_vendor() == "GenuineIntel"
