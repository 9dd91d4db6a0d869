"""Resegmentation: turns cover the VAD segments exactly, follow the evidence, and ignore blips."""
from __future__ import annotations

import numpy as np

from worker.clustering import ClusterOptions
from worker.resegment import _viterbi, diarize, separation, smooth_within_segments


def test_viterbi_ignores_a_blip_but_follows_a_real_change():
    a, b = np.array([0.3, 0.0]), np.array([0.0, 0.3])
    blip = np.stack([a] * 10 + [b] + [a] * 10)
    assert set(_viterbi(blip)) == {0}
    change = np.stack([a] * 10 + [b] * 10)
    assert list(_viterbi(change)) == [0] * 10 + [1] * 10


def test_turns_cover_segments_and_change_speaker_inside_one():
    rng = np.random.default_rng(0)
    voices = rng.normal(size=(2, 32))
    starts = np.arange(0, 19.0, 0.25)
    ends = starts + 1.0
    who = (starts + 0.5 >= 10).astype(int)  # speaker 1 from 10 s on
    vectors = voices[who] + 0.3 * rng.normal(size=(starts.size, 32))
    segments = [(0.0, 12.0), (14.0, 20.0)]
    found = diarize(segments, starts, ends, vectors.astype(np.float32))
    turns = [(t.start_s, t.end_s, t.speaker) for t in found.turns]
    assert turns[0][0] == 0.0 and turns[-1][1] == 20.0
    assert sum(e - s for s, e, _ in turns) == sum(e - s for s, e in segments)
    assert [t[2] for t in turns] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01"]
    assert abs(turns[0][1] - 10.0) <= 0.5
    assert set(found.centroids) == {"SPEAKER_00", "SPEAKER_01"}
    assert found.labels.shape == starts.shape


def test_fixed_count_and_no_windows():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    starts = np.arange(40) * 0.25
    found = diarize([(0.0, 11.0)], starts, starts + 1.0, vectors, ClusterOptions(num_speakers=1))
    assert {t.speaker for t in found.turns} == {"SPEAKER_00"}
    empty = diarize([(1.0, 1.2), (2.0, 2.3)], np.zeros(0), np.zeros(0), np.zeros((0, 16), dtype=np.float32))
    assert [(t.start_s, t.end_s, t.speaker) for t in empty.turns] == [(1.0, 1.2, "SPEAKER_00"), (2.0, 2.3, "SPEAKER_00")]


def test_smoothing_stays_inside_segments():
    x = np.eye(4, dtype=np.float32)
    smoothed = smooth_within_segments(x, np.array([0, 0, 1, 1]), radius=1)
    assert smoothed[1, 2] == 0 and smoothed[2, 1] == 0  # never across a segment boundary
    assert smoothed[0, 1] > 0 and smoothed[3, 2] > 0


def test_separation_of_two_groups():
    rng = np.random.default_rng(2)
    apart = np.concatenate([rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + np.eye(8)[0] * 5])
    halves = np.arange(400) < 200
    assert separation(apart, halves, ~halves) > 4
    same = rng.normal(size=(400, 8))
    assert separation(same, halves, ~halves) < 0.5
