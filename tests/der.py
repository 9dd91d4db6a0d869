"""A small diarization error rate, so tests can bound DER without pyannote.

NIST's definition on 10 ms frames: for every frame, error = max(reference speakers, hypothesis
speakers) − correctly matched speakers, where hypothesis labels are mapped one-to-one onto
reference labels to maximise the matched time (Hungarian assignment). Overlapped speech is scored;
a collar removes frames within `collar` seconds of a reference boundary. bench/ uses
pyannote.metrics for the recorded figures; the two agree to a fraction of a percent.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

STEP = 0.01
Turn = tuple[float, float, str]


def read_rttm(text: str) -> list[Turn]:
    turns = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            turns.append((start, start + duration, parts[7]))
    return turns


def _activity(turns: Iterable[Turn], frames: int) -> tuple[np.ndarray, list[str]]:
    turns = list(turns)
    names = sorted({t[2] for t in turns})
    grid = np.zeros((frames, len(names)), dtype=bool)
    for start, end, name in turns:
        grid[int(round(start / STEP)) : int(round(end / STEP)), names.index(name)] = True
    return grid, names


def der(reference: list[Turn], hypothesis: list[Turn], collar: float = 0.0) -> float:
    """Diarization error rate (0.0 = perfect) of `hypothesis` against `reference`."""
    return sum(der_parts(reference, hypothesis, collar).values())


def der_parts(reference: list[Turn], hypothesis: list[Turn], collar: float = 0.0) -> dict[str, float]:
    """DER's three parts as shares of the reference speech: missed, false alarm, confusion."""
    frames = int(np.ceil(max(t[1] for t in [*reference, *hypothesis]) / STEP)) + 1
    ref, _ = _activity(reference, frames)
    hyp, _ = _activity(hypothesis, frames)
    scored = np.ones(frames, dtype=bool)
    if collar > 0:
        c = int(round(collar / STEP))
        for start, end, _ in reference:
            for edge in (int(round(start / STEP)), int(round(end / STEP))):
                scored[max(0, edge - c) : edge + c] = False
    ref, hyp = ref[scored], hyp[scored]
    overlap = ref.T.astype(np.int64) @ hyp.astype(np.int64)
    rows, cols = linear_sum_assignment(-overlap)
    correct = np.zeros(ref.shape[0], dtype=np.int64)
    for r, h in zip(rows, cols):
        correct += ref[:, r] & hyp[:, h]
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    total = max(1, int(n_ref.sum()))
    return {
        "missed": float(np.maximum(n_ref - n_hyp, 0).sum() / total),
        "false_alarm": float(np.maximum(n_hyp - n_ref, 0).sum() / total),
        "confusion": float((np.minimum(n_ref, n_hyp) - correct).sum() / total),
    }


def detection_parts(reference: list[Turn], hypothesis: list[Turn]) -> dict[str, float]:
    """Speech detection, whoever speaks: reference speech (the union of its speakers) the
    hypothesis misses, and hypothesis speech where the reference has none, both as shares of the
    reference's speech time."""
    frames = int(np.ceil(max(t[1] for t in [*reference, *hypothesis]) / STEP)) + 1
    ref = _activity(reference, frames)[0].any(axis=1)
    hyp = _activity(hypothesis, frames)[0].any(axis=1)
    speech = max(1, int(ref.sum()))
    return {"missed": float((ref & ~hyp).sum() / speech), "false_alarm": float((hyp & ~ref).sum() / speech)}
