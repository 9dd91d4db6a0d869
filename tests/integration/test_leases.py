"""Leases against the real database and broker, with the real heartbeat thread in a process of its own:
a task whose holder is alive is never sent again however long it runs (here many lease lengths),
one whose holder was SIGKILLed is sent again by the next sweep once its lease ran out, a started
task holding no lease at all is sent at once, and a stale copy of a re-sent task finds the lease
held and does nothing. Short leases (1 s) keep it cheap; the chaos tests run the production ones."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from hark.db import session_scope
from hark.models import Job, JobTask, Tenant
from tests.conftest import isolated_settings, settings_env

pytestmark = pytest.mark.integration

HEARTBEAT_S, LEASE_S = 0.2, 1.0


def _hold_forever(database_url: str, job_id: uuid.UUID, name: str, holder: str) -> None:
    """A worker process running a long task: it took the lease and its heartbeat keeps it."""
    from worker import leases

    with session_scope(database_url) as s:
        assert leases.acquire(s, job_id, name, holder, LEASE_S)
    leases.hold(database_url, job_id, name, holder, HEARTBEAT_S, LEASE_S)
    time.sleep(3600)


@pytest.fixture
def janitor_env(base_settings, monkeypatch):  # type: ignore[no-untyped-def]
    """The janitor of this process pointed at a database and broker prefix of its own."""
    with isolated_settings(base_settings, heartbeat_s=HEARTBEAT_S, lease_s=LEASE_S) as cfg:
        for key, value in settings_env(cfg).items():
            if key.startswith("HARK_"):
                monkeypatch.setenv(key, value)
        from hark.queues import make_celery
        from worker.tasks import common, dispatch, janitor

        common.settings.cache_clear()
        app = make_celery(cfg)
        monkeypatch.setattr(janitor, "app", app)
        monkeypatch.setattr(dispatch, "app", app)
        yield cfg, janitor
        common.settings.cache_clear()


def test_alive_holder_keeps_its_task_and_a_dead_ones_task_is_sent_again(janitor_env) -> None:
    cfg, janitor = janitor_env
    from worker import leases

    jid = uuid.uuid4()
    with session_scope(cfg.database_url) as s:
        tenant = Tenant(id=uuid.uuid4(), name="leases")
        s.add(tenant)
        s.flush()
        s.add(Job(id=jid, tenant_id=tenant.id, status="inferring", filename="x.wav", options={}, timings={}))
        s.flush()
        for n in range(2):
            s.add(JobTask(job_id=jid, batch_idx=n, kind="asr", first_idx=n, last_idx=n, speech_s=1.0))
        s.flush()
        s.execute(
            update(JobTask)
            .where(JobTask.job_id == jid)
            .values(enqueued_at=func.now() - timedelta(minutes=1), started_at=func.now())
        )

    # Batch 0 runs in a live process; batch 1 was begun by a worker that left no lease.
    holder = multiprocessing.get_context("spawn").Process(
        target=_hold_forever, args=(cfg.database_url, jid, "infer:0:asr", "task-a"), daemon=True
    )
    holder.start()
    try:
        deadline = time.monotonic() + 30
        while not _lease_holder(cfg, jid, "infer:0:asr"):
            assert time.monotonic() < deadline and holder.is_alive(), "the holder never took its lease"
            time.sleep(0.05)
        assert janitor.sweep() == {"prepare": 0, "infer": 1, "reduce": 0}  # batch 1 only
        for _ in range(4):  # the task runs on for many lease lengths: never sent again
            time.sleep(LEASE_S)
            assert janitor.sweep()["infer"] == 0
        assert _enqueued_order(cfg, jid) == [1]

        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        time.sleep(LEASE_S + 2 * HEARTBEAT_S)
        assert janitor.sweep()["infer"] == 1
        assert _enqueued_order(cfg, jid) == [0, 1]
    finally:
        if holder.is_alive():
            holder.kill()

    # The re-sent copy (a new task id) takes the expired lease; the dead worker's own copy, handed
    # back by the broker later, finds it held by a live task and does nothing.
    with session_scope(cfg.database_url) as s:
        assert leases.acquire(s, jid, "infer:0:asr", "task-b", LEASE_S)
    with session_scope(cfg.database_url) as s:
        assert not leases.acquire(s, jid, "infer:0:asr", "task-a", LEASE_S)
        assert leases.acquire(s, jid, "infer:0:asr", "task-b", LEASE_S)  # a retry keeps its lease
        assert leases.holds(s, jid, "infer:0:asr", "task-b")
    # Handed to another copy (the janitor's re-send after the lease ran out), the lease fences the
    # first one out: prepare checks it before writing rows.
    with session_scope(cfg.database_url) as s:
        leases.reserve(s, jid, "infer:0:asr", "task-c", 60)
    with session_scope(cfg.database_url) as s:
        assert not leases.holds(s, jid, "infer:0:asr", "task-b")
        assert not leases.acquire(s, jid, "infer:0:asr", "task-b", LEASE_S)
        assert leases.acquire(s, jid, "infer:0:asr", "task-c", LEASE_S)


def _lease_holder(cfg, jid: uuid.UUID, name: str) -> str | None:  # type: ignore[no-untyped-def]
    from hark.models import TaskLease

    with session_scope(cfg.database_url) as s:
        return s.scalar(select(TaskLease.holder).where(TaskLease.job_id == jid, TaskLease.name == name))


def _enqueued_order(cfg, jid: uuid.UUID) -> list[int]:  # type: ignore[no-untyped-def]
    """Batches the janitor sent again (their enqueued_at moved past their started_at)."""
    with session_scope(cfg.database_url) as s:
        return sorted(
            s.scalars(select(JobTask.batch_idx).where(JobTask.job_id == jid, JobTask.enqueued_at > JobTask.started_at))
        )
