"""Clustering saved ahead of reduce: the file round trip, its fingerprint, and reduce's choice
between the saved outcome and its own clustering (the S3 boundary faked)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from hark.storage import diarization_key, vad_key
from worker import diarization_file
from worker.clustering import ClusterOptions
from worker.resegment import Diarization, SpeechProbabilities, Turn, diarize


@pytest.fixture()
def inputs():
    """Two voices, 40 windows each, in two segments."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=256), rng.normal(size=256)
    vectors = np.concatenate([a + 0.2 * rng.normal(size=(40, 256)), b + 0.2 * rng.normal(size=(40, 256))]).astype(
        np.float32
    )
    starts = np.concatenate([np.arange(40) * 0.25, 20 + np.arange(40) * 0.25])
    spans = [(0.0, 11.0), (20.0, 31.0)]
    speech = SpeechProbabilities(np.full(1000, 0.9, dtype=np.float32), 0.032)
    return spans, starts, starts + 1.0, vectors, speech


def test_a_saved_diarization_comes_back_equal(inputs):
    spans, starts, ends, vectors, speech = inputs
    found = diarize(spans, starts, ends, vectors, ClusterOptions(), speech)
    assert len(found.centroids) == 2
    key = diarization_file.fingerprint(spans, starts, ends, vectors, ClusterOptions(), speech)
    back = diarization_file.load(diarization_file.dump(found, key), key)
    assert back is not None
    assert back.turns == found.turns and back.overlaps == found.overlaps
    assert np.array_equal(back.labels, found.labels)
    assert sorted(back.centroids) == sorted(found.centroids)
    assert all(np.array_equal(back.centroids[n], found.centroids[n]) for n in found.centroids)


def test_an_empty_diarization_round_trips():
    empty = Diarization(turns=[], labels=np.zeros(0, dtype=int), centroids={}, overlaps=[])
    back = diarization_file.load(diarization_file.dump(empty, "k"), "k")
    assert back is not None and back.turns == [] and back.centroids == {} and back.labels.size == 0


def test_other_inputs_or_a_damaged_file_give_nothing(inputs):
    spans, starts, ends, vectors, speech = inputs
    key = diarization_file.fingerprint(spans, starts, ends, vectors, ClusterOptions(), speech)
    changed = vectors.copy()
    changed[5, 7] += 1e-3
    others = [
        diarization_file.fingerprint(spans, starts, ends, changed, ClusterOptions(), speech),
        diarization_file.fingerprint(spans[:1], starts, ends, vectors, ClusterOptions(), speech),
        diarization_file.fingerprint(spans, starts, ends, vectors, ClusterOptions(num_speakers=3), speech),
        diarization_file.fingerprint(spans, starts, ends, vectors, ClusterOptions(), None),
    ]
    assert key not in others and len(set(others)) == len(others)
    data = diarization_file.dump(Diarization([Turn(0.0, 1.0, "SPEAKER_00")], np.zeros(1, dtype=int), {}), key)
    assert diarization_file.load(data, others[0]) is None
    assert diarization_file.load(data[: len(data) // 2], key) is None


class FakeStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def exists(self, key: str) -> bool:
        return key in self.objects

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]


def test_reduce_takes_the_saved_outcome_only_for_its_own_inputs(inputs, monkeypatch):
    from worker.tasks import reduce as reduce_task

    spans, starts, ends, vectors, speech = inputs
    jid = uuid.uuid4()
    storage = FakeStorage()
    storage.objects[vad_key(jid)] = speech.to_bytes()
    stored_speech = SpeechProbabilities.from_bytes(speech.to_bytes(), speech.frame_s)  # as reduce reads it
    saved = Diarization([Turn(0.0, 31.0, "SPEAKER_07")], np.zeros(80, dtype=int), {})
    key = diarization_file.fingerprint(spans, starts, ends, vectors, ClusterOptions(), stored_speech)
    storage.objects[diarization_key(jid)] = diarization_file.dump(saved, key)
    calls = []
    monkeypatch.setattr(reduce_task, "diarize", lambda *a: calls.append(a) or "clustered")

    got = reduce_task._saved_or_diarize(storage, jid, spans, starts, ends, vectors, {})
    assert isinstance(got, Diarization) and got.turns == saved.turns and not calls
    # Another speaker count asked for: the saved outcome does not apply.
    assert reduce_task._saved_or_diarize(storage, jid, spans, starts, ends, vectors, {"num_speakers": 2}) == "clustered"
    del storage.objects[diarization_key(jid)]
    assert reduce_task._saved_or_diarize(storage, jid, spans, starts, ends, vectors, {}) == "clustered"
    assert len(calls) == 2
