"""Speaker windows in and out of PostgreSQL with COPY in binary form.

An hour of meeting has some 14 000 windows of 256 floats. As a multi-row INSERT every float went
through Python's parameter adaptation (0.2 s per batch of 480 windows, inside the model worker);
binary COPY sends the same rows in a tenth of that. Reading them back for clustering the same way
takes about a third of the CPU of a plain SELECT, which parsed each array as text.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from worker.engines.base import SegmentResult

_COLUMNS = ("job_id", "segment_id", "win_idx", "start_s", "end_s", "vector")
_TYPES = ("uuid", "int8", "int4", "float8", "float8", "float4[]")


def _driver(s: Session) -> Any:
    """The session's own psycopg connection (so COPY runs inside the session's transaction)."""
    return s.connection().connection.driver_connection


def copy_windows(s: Session, job_id: uuid.UUID, results: Iterable[SegmentResult]) -> int:
    """Append each result's windows (numbered from 0 per segment); returns the rows written."""
    written = 0
    with (
        _driver(s).cursor() as cursor,
        cursor.copy(f"COPY embeddings ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(list(_TYPES))
        for r in results:
            for i, w in enumerate(r.windows):
                copy.write_row((job_id, r.segment_id, i, w.start_s, w.end_s, np.asarray(w.vector, np.float32).tolist()))
                written += 1
    return written


def load_windows(s: Session, job_id: uuid.UUID, expected: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The job's windows ordered by start: starts, ends and float32 vectors, streamed row by row
    into arrays sized for `expected` rows (grown if there are more), so a 10-hour job's 100 000
    windows never exist as Python lists at once."""
    size = max(1, expected)
    starts, ends = np.zeros(size), np.zeros(size)
    vectors: np.ndarray | None = None
    n = 0
    query = (
        "COPY (SELECT start_s, end_s, vector FROM embeddings WHERE job_id = %s ORDER BY start_s) "
        "TO STDOUT (FORMAT BINARY)"
    )
    with _driver(s).cursor() as cursor, cursor.copy(query, (job_id,)) as copy:
        copy.set_types(["float8", "float8", "float4[]"])
        for start, end, vector in copy.rows():
            if vectors is None:
                vectors = np.zeros((size, len(vector)), dtype=np.float32)
            if n == len(starts):
                starts, ends = np.resize(starts, 2 * n), np.resize(ends, 2 * n)
                vectors = np.concatenate([vectors, np.zeros_like(vectors)])
            starts[n], ends[n], vectors[n] = start, end, vector
            n += 1
    if vectors is None:  # every segment too short to embed
        return np.zeros(0), np.zeros(0), np.zeros((0, 1), dtype=np.float32)
    return starts[:n], ends[:n], vectors[:n]
