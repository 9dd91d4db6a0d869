"""A job's diarization saved beside its PCM, so clustering can run before reduce does.

The speaker-embedding batches of a job are usually all stored while the last ASR batches are
still running. The task that stores the last one sends `hark.diarize`, which clusters at once on
the CPU worker, where at a job's tail a core is often idle, and saves the outcome here; reduce,
once the transcripts are in, reads it instead of clustering on the job's critical path.

The file carries a fingerprint of everything the clustering read: segment spans, windows and
their vectors, the speaker-count options and the VAD's probabilities. reduce uses the file only
when its own inputs give the same fingerprint and otherwise clusters itself, so a stale or
half-written file can never label a job; it only costs the time it would have saved.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

import numpy as np

from worker.clustering import ClusterOptions
from worker.resegment import Diarization, SpeechProbabilities, Turn


def fingerprint(
    spans: list[tuple[float, float]],
    starts: np.ndarray,
    ends: np.ndarray,
    vectors: np.ndarray,
    options: ClusterOptions,
    speech: SpeechProbabilities | None,
) -> str:
    """A hash of the clustering's inputs (exact bytes: the same rows give the same hash)."""
    h = hashlib.sha256()
    for part in (
        np.asarray(spans, dtype=np.float64),
        starts.astype(np.float64),
        ends.astype(np.float64),
        vectors.astype(np.float32),
    ):
        h.update(str(part.shape).encode())
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(repr(options).encode())
    h.update(
        b"no-speech"
        if speech is None
        else np.ascontiguousarray(speech.probs).tobytes() + repr((speech.frame_s, speech.threshold)).encode()
    )
    return h.hexdigest()


def _turns(prefix: str, turns: list[Turn]) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_times": np.array([(t.start_s, t.end_s) for t in turns], dtype=np.float64).reshape(-1, 2),
        f"{prefix}_speakers": np.array([t.speaker for t in turns], dtype=np.str_),
    }


def dump(found: Diarization, key: str) -> bytes:
    """The diarization as an .npz file (no pickles), tagged with its inputs' fingerprint."""
    names = sorted(found.centroids)
    vectors = np.stack([found.centroids[n] for n in names]) if names else np.zeros((0, 0), dtype=np.float32)
    out = io.BytesIO()
    arrays: dict[str, Any] = {
        "key": np.array(key),
        "labels": np.asarray(found.labels),
        "centroid_names": np.array(names, dtype=np.str_),
        "centroid_vectors": vectors,
        **_turns("turns", found.turns),
        **_turns("overlaps", found.overlaps),
    }
    np.savez(out, **arrays)
    return out.getvalue()


def load(data: bytes, key: str) -> Diarization | None:
    """The saved diarization, or None when it was made from other inputs (or is unreadable)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None

            def turns(prefix: str) -> list[Turn]:
                times, speakers = z[f"{prefix}_times"], z[f"{prefix}_speakers"]
                return [Turn(float(a), float(b), str(s)) for (a, b), s in zip(times, speakers)]

            names = [str(n) for n in z["centroid_names"]]
            return Diarization(
                turns=turns("turns"),
                labels=z["labels"],
                centroids={n: z["centroid_vectors"][i] for i, n in enumerate(names)},
                overlaps=turns("overlaps"),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
