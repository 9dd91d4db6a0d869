"""Naming a job's speakers from the tenant's enrolled voices.

A voice is a person's samples (speaker centroids of earlier jobs, reference audio, manual
corrections); its vector is the mean of its unit-length samples, so several samples are combined
and none dominates by its length. A job's speaker is named when its centroid scores at least the
threshold against a voice, best pair first, each voice and each speaker used once per job; below
it the speaker stays anonymous. A manual correction (a sample with this job and speaker) wins
over any match and is kept when the job is reduced again.

Scores are cosines between vectors of one speaker engine; vectors of another engine (another
length) are never compared. The threshold for the embedded Resemblyzer engine was chosen on real
voices (bench/voice_calibration.py; figures in BENCHMARKS.md and docs/api.md): above every
score two different people in two different AMI clips reached. An engine without a calibrated
threshold names nobody unless the operator sets `voice_threshold`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hark.models import Speaker, Voice, VoiceSample

# Calibrated thresholds by vector length (the engine's output size): Resemblyzer's GE2E is 256.
THRESHOLDS: dict[int, float] = {256: 0.95}
THRESHOLD = THRESHOLDS[256]


def unit(v: np.ndarray | list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / max(float(np.linalg.norm(a)), 1e-9)


def score(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    """Cosine similarity of two speaker vectors (centroids are plain means, not unit length)."""
    return float(unit(a) @ unit(b))


def threshold_for(dim: int, configured: float = 0.0) -> float | None:
    """The operator's `voice_threshold` when set, else the calibrated one for this engine's vector
    length; None (name nobody) for an engine nobody calibrated."""
    return configured if configured > 0 else THRESHOLDS.get(dim)


@dataclass
class Match:
    voice_id: uuid.UUID
    score: float
    source: str  # "match" or "manual"


def voice_matrix(s: Session, tenant_id: uuid.UUID, dim: int) -> tuple[list[uuid.UUID], np.ndarray]:
    """The tenant's voices with samples of this vector length, and their combined unit vectors."""
    rows = s.execute(
        select(VoiceSample.voice_id, VoiceSample.vector).where(
            VoiceSample.tenant_id == tenant_id, func.cardinality(VoiceSample.vector) == dim
        )
    ).all()
    by_voice: dict[uuid.UUID, list[np.ndarray]] = {}
    for voice_id, vector in rows:
        by_voice.setdefault(voice_id, []).append(unit(vector))
    ids = sorted(by_voice, key=str)
    if not ids:
        return [], np.zeros((0, dim), dtype=np.float32)
    return ids, np.stack([unit(np.mean(by_voice[v], axis=0)) for v in ids])


def assign(
    centroids: dict[str, np.ndarray], voice_ids: list[uuid.UUID], voices: np.ndarray, threshold: float | None
) -> dict[str, Match]:
    """Best (speaker, voice) pairs at or above the threshold, each speaker and voice used once."""
    labels = [k for k in sorted(centroids) if centroids[k] is not None]
    if threshold is None or not labels or not voice_ids:
        return {}
    scores = np.stack([unit(centroids[k]) for k in labels]) @ voices.T
    found: dict[str, Match] = {}
    used: set[int] = set()
    for flat in np.argsort(-scores, axis=None):
        i, j = np.unravel_index(int(flat), scores.shape)
        if scores[i, j] < threshold:
            break
        if labels[i] in found or int(j) in used:
            continue
        found[labels[i]] = Match(voice_ids[j], float(scores[i, j]), "match")
        used.add(int(j))
    return found


def corrections(s: Session, job_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """Speaker label → voice a user assigned by hand in this job, or the person a reference
    recording was submitted to enroll (the newest wins)."""
    rows = s.execute(
        select(VoiceSample.speaker, VoiceSample.voice_id)
        .where(VoiceSample.job_id == job_id, VoiceSample.source.in_(("correction", "audio")))
        .order_by(VoiceSample.id)
    ).all()
    return {label: voice_id for label, voice_id in rows if label}


def match_speakers(
    s: Session, tenant_id: uuid.UUID, job_id: uuid.UUID, centroids: dict[str, np.ndarray], configured: float = 0.0
) -> dict[str, Match]:
    """Who each of a job's speakers is: manual corrections first, then the best matches among the
    remaining speakers and voices."""
    dims = {len(v) for v in centroids.values() if v is not None}
    manual = corrections(s, job_id)
    found: dict[str, Match] = {}
    for dim in dims:
        ids, matrix = voice_matrix(s, tenant_id, dim)
        for label, voice_id in manual.items():
            if label in centroids and voice_id in ids:
                found[label] = Match(voice_id, score(centroids[label], matrix[ids.index(voice_id)]), "manual")
        rest = {k: v for k, v in centroids.items() if v is not None and len(v) == dim and k not in found}
        taken = {m.voice_id for m in found.values()}
        keep = [i for i, v in enumerate(ids) if v not in taken]
        found.update(assign(rest, [ids[i] for i in keep], matrix[keep], threshold_for(dim, configured)))
    return found


def enroll_reference(
    s: Session, tenant_id: uuid.UUID, job_id: uuid.UUID, name: str, speech_s: dict[str, float], centroids: dict
) -> None:
    """A reference recording (job option `enroll`): its main speaker, the one with most speech,
    becomes a sample of the person `name` (enrolled if new). Replaces what an earlier run of the
    same job added, so a repeated reduce adds nothing twice."""
    voiced = [k for k in speech_s if centroids.get(k) is not None]
    s.execute(delete(VoiceSample).where(VoiceSample.job_id == job_id, VoiceSample.source == "audio"))
    if not voiced:
        return
    s.execute(pg_insert(Voice).values(id=uuid.uuid4(), tenant_id=tenant_id, name=name).on_conflict_do_nothing())
    voice_id = s.scalar(select(Voice.id).where(Voice.tenant_id == tenant_id, Voice.name == name))
    main = max(voiced, key=speech_s.__getitem__)
    s.add(
        VoiceSample(
            voice_id=voice_id,
            tenant_id=tenant_id,
            source="audio",
            job_id=job_id,
            speaker=main,
            vector=[float(x) for x in centroids[main]],
        )
    )
    s.flush()


def names(s: Session, voice_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not voice_ids:
        return {}
    return dict(s.execute(select(Voice.id, Voice.name).where(Voice.id.in_(voice_ids))).all())


def store_matches(s: Session, job_id: uuid.UUID, found: dict[str, Match]) -> None:
    """Write the matches onto the job's speaker rows (all of them: unmatched ones are cleared)."""
    s.execute(
        text("UPDATE speakers SET person_id = NULL, person_score = NULL, person_source = NULL WHERE job_id = :job"),
        {"job": job_id},
    )
    for label, m in found.items():
        s.execute(
            update(Speaker)
            .where(Speaker.job_id == job_id, Speaker.label == label)
            .values(person_id=m.voice_id, person_score=m.score, person_source=m.source)
        )


def people(matches: dict[str, Match], person_names: dict[uuid.UUID, str]) -> dict[str, dict[str, Any]]:
    """Speaker label → the person fields the exports carry (hark/exports.py `with_people`)."""
    return {
        label: {"person": person_names.get(m.voice_id), "person_score": round(m.score, 4), "person_source": m.source}
        for label, m in matches.items()
    }
