"""Speaker windows written and read with binary COPY (worker/window_rows.py) against PostgreSQL."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from sqlalchemy import func, select

from hark.db import session_scope
from hark.models import Embedding, Job, Segment, Tenant
from worker.engines.base import SegmentResult, Window
from worker.window_rows import copy_windows, load_windows

pytestmark = pytest.mark.integration


def test_windows_go_in_and_come_back_in_time_order(settings):
    rng = np.random.default_rng(3)
    with session_scope(settings.database_url) as s:
        tenant = Tenant(id=uuid.uuid4(), name=f"windows-{uuid.uuid4().hex[:8]}")
        s.add(tenant)
        s.flush()
        job = Job(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            status="inferring",
            filename="w.wav",
            source_key="raw/w",
            sha256=uuid.uuid4().hex * 2,
            bytes=1,
            options={},
        )
        s.add(job)
        s.flush()
        segments = [
            Segment(job_id=job.id, tenant_id=tenant.id, idx=i, start_s=10.0 * i, end_s=10.0 * i + 3) for i in range(2)
        ]
        s.add_all(segments)
        s.flush()
        vectors = rng.standard_normal((5, 256)).astype(np.float32)
        # The second segment comes first in the batch: rows come back ordered by time, not by writing.
        results = [
            SegmentResult(
                segment_id=segments[1].id, windows=[Window(10.0 + k, 11.0 + k, vectors[k]) for k in range(3)]
            ),
            SegmentResult(
                segment_id=segments[0].id, windows=[Window(0.0 + k, 1.0 + k, vectors[3 + k]) for k in range(2)]
            ),
            SegmentResult(segment_id=segments[0].id + 10**9),  # no windows: nothing written
        ]
        assert copy_windows(s, job.id, results) == 5
        win_idx = s.scalars(
            select(Embedding.win_idx).where(Embedding.segment_id == segments[1].id).order_by(Embedding.win_idx)
        ).all()
        assert win_idx == [0, 1, 2]
        starts, ends, got = load_windows(s, job.id, 5)
        assert [a.tolist() for a in load_windows(s, job.id, 2)[:2]] == [
            starts.tolist(),
            ends.tolist(),
        ]  # grows past a low guess
        assert starts.tolist() == [0.0, 1.0, 10.0, 11.0, 12.0] and ends.tolist() == [1.0, 2.0, 11.0, 12.0, 13.0]
        assert got.dtype == np.float32 and np.array_equal(got, vectors[[3, 4, 0, 1, 2]])
        empty = load_windows(s, uuid.uuid4())
        assert empty[2].shape == (0, 1)
        job_id, tenant_id = job.id, tenant.id
        s.rollback()  # COPY ran inside the session's transaction: nothing of it stays
    with session_scope(settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(Embedding).where(Embedding.job_id == job_id)) == 0
        assert s.get(Tenant, tenant_id) is None
