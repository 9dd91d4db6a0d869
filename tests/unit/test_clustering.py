"""Speaker count estimation and labelling on synthetic embeddings with known speakers."""

from __future__ import annotations

import numpy as np
import pytest

from worker.clustering import ClusterOptions, cluster


def blobs(k: int, per: int, dim: int = 64, spread: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    labels = np.repeat(np.arange(k), per)
    x = centres[labels] + spread * rng.normal(size=(k * per, dim)) * np.linalg.norm(centres, axis=1).mean() / np.sqrt(
        dim
    )
    return x, labels


def purity(pred: np.ndarray, truth: np.ndarray) -> float:
    total = 0
    for p in np.unique(pred):
        total += np.bincount(truth[pred == p]).max()
    return total / truth.size


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_estimates_speaker_count(k):
    x, truth = blobs(k, 40, seed=k)
    pred = cluster(x)
    assert len(np.unique(pred)) == k
    assert purity(pred, truth) > 0.95


def test_honours_fixed_and_bounded_counts():
    x, _ = blobs(4, 30, seed=1)
    assert len(np.unique(cluster(x, ClusterOptions(num_speakers=2)))) == 2
    assert len(np.unique(cluster(x, ClusterOptions(max_speakers=3)))) <= 3
    assert len(np.unique(cluster(x, ClusterOptions(min_speakers=6, max_speakers=8)))) >= 6


def test_one_voice_stays_one_speaker():
    x, _ = blobs(1, 50, spread=0.1)
    assert len(np.unique(cluster(x))) == 1


def test_tiny_inputs():
    assert cluster(np.zeros((0, 8))).size == 0
    assert list(cluster(np.ones((1, 8)))) == [0]
    labels = cluster(np.random.default_rng(0).normal(size=(3, 8)))
    assert labels[0] == 0  # numbered by first appearance


def test_long_recordings_cluster_through_a_sample():
    """20 000 windows (about 1.4 h at a 0.25 s hop) never build a 20 000² matrix, and still find
    every speaker, including one that speaks far less than the others."""
    x, truth = blobs(6, 3000, seed=3)
    rare, rare_truth = blobs(7, 300, seed=3)
    x = np.concatenate([x, rare[rare_truth == 6]])
    truth = np.concatenate([truth, np.full(300, 6)])
    order = np.random.default_rng(0).permutation(truth.size)
    pred = cluster(x[order], ClusterOptions(max_dense=2000))
    assert len(np.unique(pred)) == 7
    assert purity(pred, truth[order]) > 0.95


def test_common_component_does_not_hide_speakers():
    """GE2E-like vectors: a large component shared by every voice makes all cosines high; the
    speakers are still told apart because the recording's mean is removed first."""
    x, truth = blobs(4, 60, seed=5)
    shared = 6 * np.linalg.norm(x, axis=1).mean() * np.ones(x.shape[1]) / np.sqrt(x.shape[1])
    pred = cluster(x + shared)
    assert len(np.unique(pred)) == 4
    assert purity(pred, truth) > 0.95


def test_same_voice_merge_joins_split_voices_only():
    """Two voices each split in two by the clustering: joined back at a calibrated threshold,
    left apart when the threshold is 1.0 (off), never joined across voices."""
    from worker.clustering import merge_same_voice

    x, truth = blobs(2, 40, spread=0.1, seed=7)
    split = truth * 2 + (np.arange(truth.size) % 2)  # four clusters, two per voice
    joined = merge_same_voice(x, split, threshold=0.9)
    assert len(np.unique(joined)) == 2 and purity(joined, truth) == 1.0
    assert len(np.unique(merge_same_voice(x, split, threshold=1.0))) == 4
    assert len(np.unique(merge_same_voice(x, split, threshold=0.9, min_k=3))) == 3
