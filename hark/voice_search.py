"""Ranking a tenant's archive by voice: which stored speakers sound most like a vector.

Two ways, the same answer. Where the PostgreSQL server has pgvector, the database ranks
(`PGVECTOR_SQL`, cosine distance on the speakers' centroids cast to `vector`). Elsewhere (Debian's
PostgreSQL has no pgvector package) each web process keeps the tenant's centroids as one unit-
length float32 matrix and ranks with a matrix product: 100,000 vectors are 100 MB per process and
a warm search about 30 ms, p99 under 100 ms (BENCHMARKS.md). The cache is checked on every search with one
indexed count; rows added since are appended, and any other change (a deleted job) reloads.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

# One row per job: the job's speaker closest to the query, best jobs first.
PGVECTOR_SQL = """
    SELECT job_id, label, score FROM (
        SELECT sp.job_id, sp.label,
               1 - (CAST(sp.centroid AS vector) <=> CAST(CAST(:q AS real[]) AS vector)) AS score,
               row_number() OVER (PARTITION BY sp.job_id
                                  ORDER BY CAST(sp.centroid AS vector) <=> CAST(CAST(:q AS real[]) AS vector)) AS rank
        FROM public.speakers sp
        WHERE sp.tenant_id = :tenant AND cardinality(sp.centroid) = :dim
              AND sp.job_id IS DISTINCT FROM CAST(:exclude AS uuid)
    ) best
    WHERE rank = 1
    ORDER BY score DESC, job_id
    LIMIT :k
"""

_STAMP = (
    "SELECT count(*), coalesce(max(id), 0) FROM speakers WHERE tenant_id = :tenant AND cardinality(centroid) = :dim"
)
_ROWS = (
    "SELECT id, job_id, label, centroid FROM speakers"
    " WHERE tenant_id = :tenant AND cardinality(centroid) = :dim AND id > :after ORDER BY id"
)


@dataclass
class Hit:
    job_id: uuid.UUID
    label: str
    score: float


def has_pgvector(s: Session) -> bool:
    return bool(s.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).first())


def pgvector_search(
    s: Session, tenant_id: uuid.UUID, query: np.ndarray, k: int, exclude: uuid.UUID | None = None
) -> list[Hit]:
    rows = s.execute(
        text(PGVECTOR_SQL),
        {"q": [float(x) for x in query], "tenant": tenant_id, "dim": len(query), "exclude": exclude, "k": k},
    ).all()
    return [Hit(job_id, label, float(score)) for job_id, label, score in rows]


@dataclass
class _Tenant:
    count: int = 0
    max_id: int = 0
    jobs: list[uuid.UUID] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


class SpeakerIndex:
    """The in-process fallback: per (tenant, vector length), the speakers' unit centroids."""

    def __init__(self) -> None:
        self._cache: dict[tuple[uuid.UUID, int], _Tenant] = {}
        self._lock = threading.Lock()

    def _current(self, s: Session, tenant_id: uuid.UUID, dim: int) -> _Tenant:
        count, max_id = s.execute(text(_STAMP), {"tenant": tenant_id, "dim": dim}).one()
        with self._lock:
            entry = self._cache.get((tenant_id, dim))
            if entry is not None and (entry.count, entry.max_id) == (count, max_id):
                return entry
            appended = entry is not None and max_id >= entry.max_id
            base = entry if appended and entry is not None else _Tenant(matrix=np.zeros((0, dim), dtype=np.float32))
            rows = s.execute(text(_ROWS), {"tenant": tenant_id, "dim": dim, "after": base.max_id}).all()
            if appended and base.count + len(rows) != count:  # something was deleted too: reload
                base = _Tenant(matrix=np.zeros((0, dim), dtype=np.float32))
                rows = s.execute(text(_ROWS), {"tenant": tenant_id, "dim": dim, "after": 0}).all()
            if rows:
                added = np.asarray([r[3] for r in rows], dtype=np.float32)
                added /= np.maximum(np.linalg.norm(added, axis=1, keepdims=True), 1e-9)
                matrix = np.concatenate([base.matrix, added])
            else:
                matrix = base.matrix
            fresh = _Tenant(
                count=base.count + len(rows),
                max_id=max([base.max_id, *(r[0] for r in rows)]),
                jobs=base.jobs + [r[1] for r in rows],
                labels=base.labels + [r[2] for r in rows],
                matrix=matrix,
            )
            self._cache[(tenant_id, dim)] = fresh
            return fresh

    def search(
        self, s: Session, tenant_id: uuid.UUID, query: np.ndarray, k: int, exclude: uuid.UUID | None = None
    ) -> list[Hit]:
        """The k jobs with the speaker closest to `query`, best first (one hit per job)."""
        entry = self._current(s, tenant_id, len(query))
        if entry.count == 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        scores = entry.matrix @ (q / max(float(np.linalg.norm(q)), 1e-9))
        hits: list[Hit] = []
        seen: set[uuid.UUID] = set()
        # A job has a handful of speakers: the best few times k rows hold k jobs, all but always.
        want = min(scores.size, max(64, 16 * k))
        while True:
            top = np.argpartition(-scores, want - 1)[:want] if want < scores.size else np.arange(scores.size)
            for i in top[np.argsort(-scores[top], kind="stable")]:
                job = entry.jobs[i]
                if job == exclude or job in seen:
                    continue
                seen.add(job)
                hits.append(Hit(job, entry.labels[i], float(scores[i])))
                if len(hits) == k:
                    return hits
            if want >= scores.size:
                return hits
            hits, seen, want = [], set(), scores.size
