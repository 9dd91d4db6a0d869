"""Turning clustered windows and ASR words into speaker-labelled utterances.

Each word takes the speaker of the analysis window whose centre is nearest to the word's middle;
a segment is then cut wherever consecutive words change speaker. Segments without word timings
(an engine that gives none, or no speech recognised) take the speaker covering most of them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SegmentView:
    idx: int
    start_s: float
    end_s: float
    text: str
    words: list[dict[str, Any]]
    emotion: str | None = None
    emotion_source: str | None = None


@dataclass
class Utterance:
    start_s: float
    end_s: float
    speaker: str
    text: str
    segment_idx: int
    emotion: str | None = None
    emotion_source: str | None = None
    words: list[dict[str, Any]] = field(default_factory=list)


def speaker_name(label: int) -> str:
    return f"SPEAKER_{label:02d}"


class WindowLabels:
    """Window centres sorted in time, with their cluster labels, for nearest-window lookups."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray, labels: np.ndarray) -> None:
        order = np.argsort((starts + ends) / 2)
        self.centres = ((starts + ends) / 2)[order]
        self.starts, self.ends, self.labels = starts[order], ends[order], labels[order]

    def at(self, t: float) -> int | None:
        if self.centres.size == 0:
            return None
        i = int(np.searchsorted(self.centres, t))
        candidates = [j for j in (i - 1, i) if 0 <= j < self.centres.size]
        best = min(candidates, key=lambda j: abs(self.centres[j] - t))
        return int(self.labels[best])

    def majority(self, start: float, end: float) -> int | None:
        inside = (self.ends > start) & (self.starts < end)
        if not inside.any():
            return self.at((start + end) / 2)
        overlap = np.minimum(self.ends[inside], end) - np.maximum(self.starts[inside], start)
        votes: Counter[int] = Counter()
        for label, weight in zip(self.labels[inside], overlap):
            votes[int(label)] += float(weight)
        return votes.most_common(1)[0][0]


def build_utterances(segments: list[SegmentView], windows: WindowLabels) -> list[Utterance]:
    utterances: list[Utterance] = []
    for seg in segments:
        fallback = windows.majority(seg.start_s, seg.end_s)
        fallback_name = speaker_name(fallback) if fallback is not None else "SPEAKER_00"
        if not seg.words:
            utterances.append(
                Utterance(seg.start_s, seg.end_s, fallback_name, seg.text.strip(), seg.idx, seg.emotion, seg.emotion_source)
            )
            continue
        current: Utterance | None = None
        for w in seg.words:
            label = windows.at((w["start"] + w["end"]) / 2)
            name = speaker_name(label) if label is not None else fallback_name
            if current is None or current.speaker != name:
                current = Utterance(w["start"], w["end"], name, "", seg.idx, seg.emotion, seg.emotion_source)
                utterances.append(current)
            current.words.append(w)
            current.end_s = w["end"]
            current.text += w["word"]
        # Stretch the segment's first and last utterance to its VAD bounds.
        first = next(u for u in utterances if u.segment_idx == seg.idx)
        first.start_s = min(first.start_s, seg.start_s)
        utterances[-1].end_s = max(utterances[-1].end_s, seg.end_s)
    for u in utterances:
        u.text = u.text.strip()
        u.start_s, u.end_s = round(u.start_s, 3), round(u.end_s, 3)
    return utterances


def speaker_stats(utterances: list[Utterance]) -> dict[str, dict[str, float]]:
    """Speech seconds and turn count per speaker; a turn is a run of consecutive utterances."""
    stats: dict[str, dict[str, float]] = {}
    previous = None
    for u in utterances:
        entry = stats.setdefault(u.speaker, {"speech_s": 0.0, "turns": 0})
        entry["speech_s"] += u.end_s - u.start_s
        if u.speaker != previous:
            entry["turns"] += 1
        previous = u.speaker
    for entry in stats.values():
        entry["speech_s"] = round(entry["speech_s"], 3)
    return stats
