"""Arousal against the speaker's own baseline, the heated flag and the (valence, arousal) label."""

from __future__ import annotations

import statistics

import pytest

from worker.affect import CLEAR_AROUSAL, CLEAR_VALENCE, HEATED_Z, SegmentMeasures, assess, label


def calm(speaker: str, f0: float, db: float, rate: float, i: int) -> SegmentMeasures:
    """One of a speaker's ordinary segments: small natural wobble around their usual voice."""
    wobble = (-1, 0, 1, 0, -1, 1, 0, 1, -1, 0)[i % 10]
    return SegmentMeasures(
        speaker,
        {
            "f0_median_hz": f0 * (1 + 0.02 * wobble),
            "intensity_db": db + 1.0 * wobble,
            "speaking_rate": rate + 0.2 * wobble,
        },
        0.0,
    )


def test_louder_faster_higher_than_the_speakers_baseline_is_heated():
    # A deep, quiet, slow speaker and a high, loud, fast one; in absolute terms the second is
    # always "more aroused", but only the first one's outburst is far above their own baseline.
    segments = [calm("A", 110, 60, 3.5, i) for i in range(10)] + [calm("B", 220, 70, 5.5, i) for i in range(10)]
    outburst = SegmentMeasures("A", {"f0_median_hz": 140, "intensity_db": 68, "speaking_rate": 5.0}, -0.8)
    segments.append(outburst)
    out = assess(segments)
    assert out[-1].heated and out[-1].arousal >= HEATED_Z
    assert out[-1].emotion == "angry"  # clearly negative words, clearly aroused voice
    assert not any(a.heated for a in out[:-1])
    assert all(abs(a.arousal) < 1.0 for a in out[:-1])
    # Loudness is relative to the recording's median segment.
    level = statistics.median(s.prosody["intensity_db"] for s in segments)
    assert [a.loudness_db for a in out] == pytest.approx(
        [s.prosody["intensity_db"] - level for s in segments], abs=0.01
    )


def test_louder_alone_is_not_enough_but_louder_and_faster_is():
    base = [calm("A", 150, 60, 4.0, i) for i in range(10)]
    louder = SegmentMeasures("A", {"f0_median_hz": 150, "intensity_db": 64, "speaking_rate": 4.0}, None)
    both = SegmentMeasures("A", {"f0_median_hz": 150, "intensity_db": 66, "speaking_rate": 5.5}, None)
    out = assess([*base, louder, both])
    assert out[-2].arousal > 0.5 and not out[-2].heated
    assert out[-1].heated
    assert out[-1].emotion == "neutral"  # no valence: not both signals clear


def test_no_baseline_no_arousal():
    few = [calm("A", 150, 60, 4.0, i) for i in range(3)]  # too few segments for a baseline
    unmeasured = SegmentMeasures("A", None, 0.9)
    out = assess([*few, unmeasured, SegmentMeasures(None, {"intensity_db": 60.0}, None)])
    assert all(a.arousal is None and a.heated is None and a.emotion == "neutral" for a in out)
    assert out[0].loudness_db is not None and out[3].loudness_db is None


@pytest.mark.parametrize(
    ("valence", "arousal", "emotion"),
    [
        (CLEAR_VALENCE, CLEAR_AROUSAL, "happy"),
        (-CLEAR_VALENCE, CLEAR_AROUSAL, "angry"),
        (-CLEAR_VALENCE, -CLEAR_AROUSAL, "sad"),
        (CLEAR_VALENCE, -CLEAR_AROUSAL, "neutral"),  # calm and content: no such label
        (0.9, 0.5, "neutral"),  # arousal not clear
        (0.2, 2.5, "neutral"),  # valence not clear
        (None, 2.5, "neutral"),
        (-0.9, None, "neutral"),
    ],
)
def test_label_only_where_both_signals_are_clear(valence, arousal, emotion):
    assert label(valence, arousal) == emotion
