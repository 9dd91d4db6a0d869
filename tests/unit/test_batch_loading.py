"""A model task's audio fetch: one ranged GET per run of nearby segments (the S3 boundary faked)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import numpy as np

from hark.audio import SAMPLE_RATE
from worker.tasks.infer import _load_batch


class FakeStorage:
    def __init__(self, pcm: bytes) -> None:
        self.pcm, self.calls = pcm, []

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        return self.pcm[start:end]


def test_segments_far_apart_are_fetched_separately_and_sliced_exactly():
    seconds = 120
    samples = (np.arange(seconds * SAMPLE_RATE) % 30000).astype("<i2")  # every sample identifiable
    storage = FakeStorage(samples.tobytes())
    spans = [(1.0, 3.0), (4.0, 6.5), (100.0, 101.5)]  # the last one after a long silence
    rows = [
        SimpleNamespace(id=10 + i, idx=i, start_s=a, end_s=b, text=None, language=None)
        for i, (a, b) in enumerate(spans)
    ]
    batch = _load_batch(storage, uuid.uuid4(), rows)
    assert len(storage.calls) == 2
    assert sum(end - start for start, end in storage.calls) == 2 * SAMPLE_RATE * (5.5 + 1.5)
    for seg, (a, b) in zip(batch, spans):
        expected = samples[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)].astype(np.float32) / 32768
        assert np.array_equal(seg.samples, expected)
    assert [seg.segment_id for seg in batch] == [10, 11, 12]
