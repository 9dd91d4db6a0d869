"""Speakers per channel (job option `channels: separate`): each channel is one speaker.

Prepare lays the channels one after another on the job's timeline, far enough apart that no
segment spans two (worker/tasks/prepare.py `_other_channels`), so VAD, ASR, speaker vectors and
emotion run per channel with no change. Here reduce maps every segment back to its channel and
its time in the recording: the speaker is the channel (its name from `channel_names`, else
`CHANNEL_<n>`), its turns are the VAD's speech frames inside its segments (pauses shorter than
FILL_S joined, as the clustering path does; the segments themselves carry the VAD's padding), and
there is no clustering. Neighbouring segments are not merged for such a job (a merged segment
would span the other caller's turns as well).
Turns of different channels may overlap: that is the callers really talking at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from worker.assemble import SegmentView, Utterance
from worker.resegment import FILL_S, Diarization, SpeechProbabilities, Turn, speech_spans


@dataclass(frozen=True)
class ChannelLayout:
    count: int
    stride_s: float
    names: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ChannelLayout | None:
        """The layout prepare recorded, for a job that asked for separate channels."""
        if options.get("channels") != "separate" or "source_channel_stride_s" not in options:
            return None
        return cls(
            int(options.get("source_channel_count") or 1),
            float(options["source_channel_stride_s"]),
            tuple(options.get("channel_names") or ()),
        )

    def channel(self, t: float) -> int:
        return min(max(int(t // self.stride_s), 0), self.count - 1)

    def label(self, channel: int) -> str:
        return self.names[channel] if channel < len(self.names) else f"CHANNEL_{channel + 1}"


def _shift(words: list[dict[str, Any]], by: float) -> list[dict[str, Any]]:
    return [{**w, "start": round(w["start"] - by, 3), "end": round(w["end"] - by, 3)} for w in words]


def by_channel(
    layout: ChannelLayout,
    views: list[SegmentView],
    speech: SpeechProbabilities | None,
    starts: np.ndarray,
    vectors: np.ndarray,
) -> tuple[list[SegmentView], Diarization, list[Utterance]]:
    """The segments in recording time, the speakers' turns and centroids, and one utterance per
    segment, all in time order."""
    mapped: list[SegmentView] = []
    turns: list[Turn] = []
    utterances: list[Utterance] = []
    for v in views:
        c = layout.channel(v.start_s)
        offset = c * layout.stride_s
        label = layout.label(c)
        spans = speech_spans(speech, v.start_s, v.end_s) if speech is not None else [(v.start_s, v.end_s)]
        joined: list[list[float]] = []
        for a, b in spans:
            if joined and a - joined[-1][1] < FILL_S:
                joined[-1][1] = b
            else:
                joined.append([a, b])
        turns += [Turn(round(a - offset, 3), round(b - offset, 3), label) for a, b in joined]
        m = replace(
            v,
            start_s=round(v.start_s - offset, 3),
            end_s=round(v.end_s - offset, 3),
            words=_shift(v.words, offset),
        )
        mapped.append(m)
        utterances.append(
            Utterance(m.start_s, m.end_s, label, m.text.strip(), m.idx, m.emotion, m.emotion_source, m.words)
        )
    channels = np.array([layout.channel(float(t)) for t in starts], dtype=int)
    centroids = {
        layout.label(c): vectors[channels == c].mean(axis=0) for c in range(layout.count) if np.any(channels == c)
    }
    turns.sort(key=lambda t: (t.start_s, t.end_s, t.speaker))
    utterances.sort(key=lambda u: (u.start_s, u.end_s, u.speaker))
    mapped.sort(key=lambda m: (m.start_s, m.idx))
    return mapped, Diarization(turns, np.zeros(len(starts), dtype=int), centroids, []), utterances
