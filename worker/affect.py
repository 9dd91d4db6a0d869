"""Arousal against each speaker's own baseline, heated moments, and the (valence, arousal) label.

Prosody says little in absolute terms: a deep voice is not a calm one, and a close microphone is
not a shout. What carries arousal is the change against the same speaker's usual voice, so once
reduce knows who spoke each segment, each prosodic measure becomes a robust z-score against that
speaker's median in the job (scale: 1.4826 × the median absolute deviation, never below a floor,
so a very steady speaker's small wobble is not a big z). Arousal is the mean of the available
z-scores of three classic correlates (Scherer 2003; Juslin & Laukka 2003): F0 median in
semitones, loudness in dB and articulation rate. A segment is heated when its arousal is at least
HEATED_Z, i.e. about that far above the speaker's baseline on average over the three.

The label maps (valence, arousal) onto Hark's emotion vocabulary by the quadrants of Russell's
circumplex, only where both signals are clear; everything else is "neutral":

| valence (VADER compound) | arousal (z) | emotion |
|---|---|---|
| ≥ +CLEAR_VALENCE | ≥ +CLEAR_AROUSAL | happy |
| ≤ −CLEAR_VALENCE | ≥ +CLEAR_AROUSAL | angry |
| ≤ −CLEAR_VALENCE | ≤ −CLEAR_AROUSAL | sad |
| anything else | | neutral |

Calm-positive has no name in the vocabulary and stays neutral; fearful, disgusted and surprised
are not separable on these two axes and are never given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# emotion_source of the segments the prosody engine measured (worker/engines/emotion_prosody.py).
PROSODY_SOURCE = "prosody+text"
CLEAR_VALENCE = 0.5
CLEAR_AROUSAL = 1.0
HEATED_Z = 1.5
# A speaker with fewer measured segments has no baseline to compare against.
MIN_BASELINE_SEGMENTS = 4
# Smallest scale of each measure's z-score: about the segment-to-segment wobble of one calm voice.
SCALE_FLOOR = {"f0_st": 0.75, "loudness_db": 1.5, "speaking_rate": 0.4}
# A segment needs this many of the three measures for an arousal.
MIN_COMPONENTS = 2


@dataclass
class SegmentMeasures:
    """What reduce knows of one segment: its speaker, the engine's prosody and text valence."""

    speaker: str | None
    prosody: dict[str, Any] | None
    valence: float | None


@dataclass
class Affect:
    loudness_db: float | None  # relative to the recording's median segment
    arousal: float | None
    heated: bool | None
    emotion: str


def label(valence: float | None, arousal: float | None) -> str:
    """The emotion for a segment's valence and arousal (the table in the module docstring)."""
    if valence is None or arousal is None:
        return "neutral"
    if arousal >= CLEAR_AROUSAL and valence >= CLEAR_VALENCE:
        return "happy"
    if arousal >= CLEAR_AROUSAL and valence <= -CLEAR_VALENCE:
        return "angry"
    if arousal <= -CLEAR_AROUSAL and valence <= -CLEAR_VALENCE:
        return "sad"
    return "neutral"


def _components(prosody: dict[str, Any] | None, level_db: float | None) -> dict[str, float]:
    p = prosody or {}
    out = {}
    if p.get("f0_median_hz"):
        out["f0_st"] = 12 * math.log2(p["f0_median_hz"] / 100.0)
    if p.get("intensity_db") is not None and level_db is not None:
        out["loudness_db"] = p["intensity_db"] - level_db
    if p.get("speaking_rate") is not None:
        out["speaking_rate"] = float(p["speaking_rate"])
    return out


def assess(segments: Sequence[SegmentMeasures]) -> list[Affect]:
    """Loudness relative to the recording, arousal, heated flag and label for each segment."""
    levels = [s.prosody["intensity_db"] for s in segments if s.prosody and s.prosody.get("intensity_db") is not None]
    level_db = float(np.median(levels)) if levels else None
    parts = [_components(s.prosody, level_db) for s in segments]
    baselines = _baselines([s.speaker for s in segments], parts)
    out = []
    for seg, comp in zip(segments, parts, strict=True):
        base = baselines.get(seg.speaker) if seg.speaker is not None else None
        arousal = None
        if base:
            zs = [(v - base[k][0]) / base[k][1] for k, v in comp.items() if k in base]
            if len(zs) >= MIN_COMPONENTS:
                arousal = round(float(np.mean(zs)), 3)
        loudness = comp.get("loudness_db")
        out.append(
            Affect(
                loudness_db=None if loudness is None else round(loudness, 2),
                arousal=arousal,
                heated=None if arousal is None else arousal >= HEATED_Z,
                emotion=label(seg.valence, arousal),
            )
        )
    return out


def _baselines(speakers: Sequence[str | None], parts: Sequence[dict[str, float]]) -> dict[str, dict]:
    """Per speaker and measure: (median, scale), for measures with enough segments."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for speaker, comp in zip(speakers, parts, strict=True):
        if speaker is None:
            continue
        for k, v in comp.items():
            values[speaker][k].append(v)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for speaker, per in values.items():
        base = {}
        for k, vs in per.items():
            if len(vs) >= MIN_BASELINE_SEGMENTS:
                arr = np.asarray(vs)
                median = float(np.median(arr))
                mad = float(np.median(np.abs(arr - median)))
                base[k] = (median, max(1.4826 * mad, SCALE_FLOOR[k]))
        if base:
            out[speaker] = base
    return out
