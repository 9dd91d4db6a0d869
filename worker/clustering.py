"""Clustering speaker vectors into speakers, estimating how many there are.

GE2E vectors of different people are all alike (cosine 0.8–0.95 between two speakers' centroids),
because every vector carries a large component common to all voices. Subtracting the recording's
mean vector first removes it, and the cosine between windows then reflects the voice.

Spectral clustering on a pruned cosine affinity follows: each row keeps only its strongest
neighbours (5 % of the windows, at least 20), which removes the weak cross-speaker similarities,
and the number of speakers is read from the largest gap in the Laplacian's eigenvalues. So small
a neighbourhood keeps a speaker with few windows apart, but tends to split a voice rather than
join two, so clusters whose centred centroids are still alike (`merge_similarity`) are then
joined, most similar pair first. `num_speakers`,
`min_speakers` and `max_speakers` fix or bound the count.

The affinity matrix is dense, so it is built over at most `max_dense` windows (2000: two 32 MB
float64 matrices, and a few seconds of eigendecomposition on two cores). A longer recording is clustered on an
evenly spaced sample of its windows, and every window
then joins the speaker whose centroid it is closest to: memory and time stay bounded however many
hours the recording has, and a speaker present for minutes still has dozens of sampled windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.linalg import eigh


@dataclass(frozen=True)
class ClusterOptions:
    num_speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int = 20
    # Neighbours each window keeps in the affinity graph: this fraction of the windows, at least
    # min_keep.
    keep_fraction: float = 0.05
    min_keep: int = 20
    # Two clusters whose centred centroids are at least this similar are one voice (when the
    # count is not fixed).
    merge_similarity: float = 0.6
    # Largest number of windows clustered directly; beyond it, sample then assign.
    max_dense: int = 2000
    # Speakers whose plain (uncentred) mean GE2E vectors are at least this similar are one voice
    # (when the count is not fixed); see merge_same_voice. 1.0 keeps every speaker apart: how alike
    # one person's voice stays depends on the room and channel (Settings.voice_similarity).
    voice_similarity: float = 1.0


def normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-9)


def centred(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors with the recording's common component removed (see the module docstring)."""
    x = normalize(vectors.astype(np.float32))
    return normalize(x - x.mean(axis=0))


def cluster(vectors: np.ndarray, options: ClusterOptions = ClusterOptions()) -> np.ndarray:
    """Labels 0..k-1 for each row of `vectors`, numbered by first appearance."""
    n = vectors.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1 or options.num_speakers == 1 or options.max_speakers == 1:
        return np.zeros(n, dtype=int)
    x = centred(vectors)
    if n > options.max_dense:
        return _sample_then_assign(x, options)
    sim = x @ x.T
    keep = min(n - 1, max(options.min_keep, int(np.ceil(options.keep_fraction * n))))
    affinity = np.zeros((n, n), dtype=np.float64)
    top = np.argpartition(-sim, kth=min(keep, n - 1), axis=1)[:, :keep]
    rows = np.repeat(np.arange(n), top.shape[1])
    affinity[rows, top.ravel()] = np.maximum(sim[rows, top.ravel()], 0)
    del sim
    affinity = (affinity + affinity.T) / 2
    np.fill_diagonal(affinity, 0)
    d = 1 / np.sqrt(np.maximum(affinity.sum(axis=1), 1e-9))
    laplacian = np.eye(n) - d[:, None] * affinity * d[None, :]
    del affinity
    upper = min(n - 1, max(options.max_speakers, options.min_speakers, options.num_speakers or 0) + 1)
    values, vecs = eigh(laplacian, subset_by_index=[0, upper], overwrite_a=True)
    if options.num_speakers:
        k = min(options.num_speakers, n)
    else:
        gaps = np.diff(values)
        lo, hi = max(1, options.min_speakers), min(options.max_speakers, len(gaps))
        k = lo + int(np.argmax(gaps[lo - 1 : hi])) if hi >= lo else lo
    labels = _kmeans_rows(vecs[:, :k], k) if k > 1 else np.zeros(n, dtype=int)
    if not options.num_speakers:
        labels = _merge_close(x, labels, options.merge_similarity, options.min_speakers)
    return _renumber(labels)


def _sample_then_assign(x: np.ndarray, options: ClusterOptions) -> np.ndarray:
    """`x` centred unit vectors: cluster an evenly spaced sample, then assign all to centroids."""
    pick = np.linspace(0, x.shape[0] - 1, options.max_dense).round().astype(int)
    sample_labels = cluster(x[pick], options)
    centroids = normalize(np.stack([x[pick][sample_labels == k].mean(axis=0) for k in np.unique(sample_labels)]))
    labels = np.empty(x.shape[0], dtype=int)
    for start in range(0, x.shape[0], 8192):  # bounded memory: windows × speakers per block
        labels[start : start + 8192] = np.argmax(x[start : start + 8192] @ centroids.T, axis=1)
    return _renumber(labels)


def _kmeans_rows(embedding: np.ndarray, k: int) -> np.ndarray:
    rows = normalize(embedding.astype(np.float64))
    best, best_inertia = None, np.inf
    for seed in range(5):
        centroids, labels = kmeans2(rows, k, minit="++", seed=seed)
        inertia = float(((rows - centroids[labels]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    assert best is not None
    return best


def _merge_close(x: np.ndarray, labels: np.ndarray, threshold: float, min_k: int) -> np.ndarray:
    """Join clusters whose centroids are near-identical voices, most similar pair first."""
    labels = labels.copy()
    while len(np.unique(labels)) > max(1, min_k):
        ids = np.unique(labels)
        cents = normalize(np.stack([x[labels == i].mean(axis=0) for i in ids]))
        sim = cents @ cents.T
        np.fill_diagonal(sim, -1)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < threshold:
            break
        labels[labels == ids[b]] = ids[a]
    return labels


def merge_same_voice(vectors: np.ndarray, labels: np.ndarray, threshold: float, min_k: int = 1) -> np.ndarray:
    """Join speakers whose mean voice vectors, taken as they are (not centred), are at least
    `threshold` alike, most alike first.

    Centring makes the clustering sensitive to small differences, which is what separates people
    who share a room and a microphone; it also finds "speakers" in one person's changing tone or
    distance. The plain vectors give an absolute scale instead, but how alike one person's means
    stay depends on the room and the channel (two people on one telephone line are as alike as one
    person at both ends of a meeting room), so the threshold is a calibration (Settings).
    """
    return _renumber(_merge_close(normalize(vectors.astype(np.float32)), labels, threshold, min_k))


def centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-length mean vector of each label 0..k-1."""
    return normalize(np.stack([x[labels == k].mean(axis=0) for k in range(int(labels.max()) + 1)]))


def _renumber(labels: np.ndarray) -> np.ndarray:
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(label)] for label in labels], dtype=int)
