"""Packing consecutive segments into clips of bounded length. Prepare plans its batches with it
(a batch ends on a clip boundary) and the Whisper engine packs each batch's clips with it, so both
agree on where clips end; it belongs to neither."""

from __future__ import annotations


def pack_clips(lengths: list[int], max_length: int) -> list[tuple[int, int]]:
    """Runs (first, last) of consecutive items whose lengths add up to at most `max_length`; an
    item longer than that is a run of its own, and `max_length` 0 makes every item one."""
    runs: list[tuple[int, int]] = []
    total = 0
    for i, length in enumerate(lengths):
        if runs and max_length > 0 and total + length <= max_length:
            runs[-1] = (runs[-1][0], i)
            total += length
        else:
            runs.append((i, i))
            total = length
    return runs
