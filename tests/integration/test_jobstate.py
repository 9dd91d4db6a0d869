"""Status changes go through `advance()` on the real database: the conditional UPDATE refuses a
move the state machine does not allow, `only_from` narrows it (the janitor's move to reducing),
and the stage clock restarts only when the status really changes."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from hark.db import session_scope
from hark.jobstate import advance
from hark.models import Job, Tenant
from hark.status import JobStatus

pytestmark = pytest.mark.integration


def _job(settings, status: JobStatus) -> uuid.UUID:
    with session_scope(settings.database_url) as s:
        tenant = Tenant(name=f"tenant-state-{uuid.uuid4().hex[:8]}")
        s.add(tenant)
        s.flush()
        jid = uuid.uuid4()
        s.add(Job(id=jid, tenant_id=tenant.id, status=status, filename="x.wav", options={}, timings={}))
        s.flush()
        s.execute(text("UPDATE jobs SET stage_started_at = now() - interval '1 hour' WHERE id = :id"), {"id": jid})
    return jid


def _row(settings, jid: uuid.UUID) -> tuple[str, float]:
    with session_scope(settings.database_url) as s:
        status, age = s.execute(
            text("SELECT status, extract(epoch FROM now() - stage_started_at) FROM jobs WHERE id = :id"), {"id": jid}
        ).one()
    return status, float(age)


def test_only_from_moves_a_job_still_inferring_and_restarts_its_stage_clock(settings) -> None:
    jid = _job(settings, JobStatus.INFERRING)
    with session_scope(settings.database_url) as s:
        assert advance(s, jid, JobStatus.REDUCING, only_from=JobStatus.INFERRING)
    status, age = _row(settings, jid)
    assert status == JobStatus.REDUCING == "reducing" and age < 600  # the clock moved from an hour ago


def test_only_from_leaves_a_job_another_worker_moved(settings) -> None:
    jid = _job(settings, JobStatus.REDUCING)
    with session_scope(settings.database_url) as s:
        assert not advance(s, jid, JobStatus.REDUCING, only_from=JobStatus.INFERRING)
        assert advance(s, jid, JobStatus.REDUCING)  # a redelivered reduce re-enters its own stage…
    status, age = _row(settings, jid)
    assert status == "reducing" and age > 3000  # …without restarting the stage clock


def test_a_finished_job_does_not_move_back(settings) -> None:
    jid = _job(settings, JobStatus.DONE)
    with session_scope(settings.database_url) as s:
        assert not advance(s, jid, JobStatus.PREPARING)
        assert not advance(s, jid, JobStatus.FAILED, error_code="x", error_message="x")
    assert _row(settings, jid)[0] == "done"
