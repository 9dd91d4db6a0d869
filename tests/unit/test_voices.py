"""Matching speakers to voices: best pair first, one voice per speaker and one speaker per
voice, nobody below the threshold, an uncalibrated engine names nobody; exports carry names."""

from __future__ import annotations

import uuid

import numpy as np

from hark.exports import render, with_people
from worker.voices import THRESHOLD, assign, threshold_for, unit


def _near(v: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """A vector at exactly this cosine from v."""
    other = rng.standard_normal(v.size)
    other -= (other @ unit(v)) * unit(v)
    return cos * unit(v) + np.sqrt(1 - cos**2) * unit(other)


def test_assign_best_pairs_once_and_never_below_threshold():
    rng = np.random.default_rng(0)
    a, b = unit(rng.standard_normal(256)), unit(rng.standard_normal(256))
    ids = [uuid.uuid4(), uuid.uuid4()]
    voices = np.stack([a, b])
    speakers = {
        "SPEAKER_00": _near(a, 0.99, rng),
        "SPEAKER_01": _near(a, 0.97, rng),  # also like a, but SPEAKER_00 is more so
        "SPEAKER_02": _near(b, THRESHOLD - 0.01, rng),  # just below: stays anonymous
    }
    found = assign(speakers, ids, voices, THRESHOLD)
    assert set(found) == {"SPEAKER_00"}
    assert found["SPEAKER_00"].voice_id == ids[0] and found["SPEAKER_00"].score >= THRESHOLD
    speakers["SPEAKER_02"] = _near(b, THRESHOLD + 0.01, rng)
    found = assign(speakers, ids, voices, THRESHOLD)
    assert {k: m.voice_id for k, m in found.items()} == {"SPEAKER_00": ids[0], "SPEAKER_02": ids[1]}
    assert all(m.score >= THRESHOLD for m in found.values())


def test_thresholds_by_engine():
    assert threshold_for(256) == THRESHOLD
    assert threshold_for(192) is None  # CAM++ until an operator calibrates it
    assert threshold_for(192, configured=0.6) == 0.6
    assert assign({"S": np.ones(192)}, [uuid.uuid4()], np.ones((1, 192)), None) == {}


def test_exports_name_the_person():
    doc = {
        "recording": "r",
        "speakers": [{"label": "SPEAKER_00"}, {"label": "SPEAKER_01"}],
        "utterances": [
            {"start": 0.0, "end": 1.0, "speaker": "SPEAKER_00", "text": "hi"},
            {"start": 1.0, "end": 2.0, "speaker": "SPEAKER_01", "text": "yo"},
        ],
    }
    with_people(doc, {"SPEAKER_00": {"person": "Alice", "person_score": 0.97, "person_source": "match"}})
    assert doc["speakers"][1]["person"] is None and doc["speakers"][0]["person_score"] == 0.97
    assert "Alice: hi" in render(doc, "txt") and "SPEAKER_01: yo" in render(doc, "txt")
    assert "<v Alice>hi" in render(doc, "vtt")
