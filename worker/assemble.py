"""Turning speaker turns and ASR words into utterances and per-speaker statistics.

Turns (who speaks when, from worker.resegment) lie inside the VAD segments, one speaker at a time;
with the overlaps (a second speaker heard at a change of turn) they make the RTTM and the speaker
statistics. Utterances (the transcript's lines) come from the words, each word
taking the speaker of the turn at its middle. Segments without word timings (an engine that gives
none, or no speech recognised) take the speaker covering most of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.resegment import Turn


@dataclass
class SegmentView:
    idx: int
    start_s: float
    end_s: float
    text: str
    words: list[dict[str, Any]]
    emotion: str | None = None
    emotion_source: str | None = None
    language: str | None = None


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
    language: str | None = None


class TurnIndex:
    """Speaker lookups by time against a sorted list of turns."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = turns
        self.starts = np.array([t.start_s for t in turns])

    def at(self, t: float) -> str:
        i = max(0, int(np.searchsorted(self.starts, t, side="right")) - 1)
        in_pause = i + 1 < len(self.turns) and t > self.turns[i].end_s
        if in_pause and self.turns[i + 1].start_s - t < t - self.turns[i].end_s:  # the nearer turn
            i += 1
        return self.turns[i].speaker if self.turns else "SPEAKER_00"

    def majority(self, start: float, end: float) -> str:
        votes: dict[str, float] = {}
        lo = max(0, int(np.searchsorted(self.starts, start, side="right")) - 1)
        hi = int(np.searchsorted(self.starts, end, side="left"))
        for t in self.turns[lo:hi]:
            overlap = min(t.end_s, end) - max(t.start_s, start)
            if overlap > 0:
                votes[t.speaker] = votes.get(t.speaker, 0.0) + overlap
        return max(votes, key=votes.__getitem__) if votes else self.at((start + end) / 2)


def build_utterances(segments: list[SegmentView], turns: list[Turn]) -> list[Utterance]:
    """The transcript's lines: each word takes the speaker of the turn at its middle, and a segment
    is split wherever consecutive words change speaker."""
    index = TurnIndex(turns)
    utterances: list[Utterance] = []
    for seg in segments:
        if not seg.words:
            speaker = index.majority(seg.start_s, seg.end_s)
            utterances.append(
                Utterance(
                    seg.start_s,
                    seg.end_s,
                    speaker,
                    seg.text.strip(),
                    seg.idx,
                    seg.emotion,
                    seg.emotion_source,
                    language=seg.language,
                )
            )
            continue
        current: Utterance | None = None
        first = len(utterances)
        for w in seg.words:
            speaker = index.at((w["start"] + w["end"]) / 2)
            if current is None or current.speaker != speaker:
                current = Utterance(
                    w["start"], w["end"], speaker, "", seg.idx, seg.emotion, seg.emotion_source, language=seg.language
                )
                utterances.append(current)
            current.words.append(w)
            current.end_s = w["end"]
            current.text += w["word"]
        # Stretch the segment's first and last utterance to its VAD bounds.
        utterances[first].start_s = min(utterances[first].start_s, seg.start_s)
        utterances[-1].end_s = max(utterances[-1].end_s, seg.end_s)
    for u in utterances:
        u.text = u.text.strip()
        u.start_s, u.end_s = round(u.start_s, 3), round(u.end_s, 3)
    return utterances


def speaker_stats(turns: list[Turn], overlaps: Sequence[Turn] = ()) -> dict[str, dict[str, float]]:
    """Speech seconds and turn count per speaker; consecutive turns of one speaker are one turn.
    `overlaps` (a speaker heard inside another's turn) add seconds, not turns."""
    stats: dict[str, dict[str, float]] = {}
    previous = None
    for t in turns:
        entry = stats.setdefault(t.speaker, {"speech_s": 0.0, "turns": 0})
        entry["speech_s"] += t.end_s - t.start_s
        if t.speaker != previous:
            entry["turns"] += 1
        previous = t.speaker
    for t in overlaps:
        stats.setdefault(t.speaker, {"speech_s": 0.0, "turns": 0})["speech_s"] += t.end_s - t.start_s
    for entry in stats.values():
        entry["speech_s"] = round(entry["speech_s"], 3)
    return stats
