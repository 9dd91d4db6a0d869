"""The janitor: finds work that was lost or whose worker died, and sends it again.

Celery delivers at least once, but only while the broker still holds the message: a worker killed
outright leaves its message unacknowledged until the visibility timeout (hours), and a broker that
restarts without persistence forgets its queues. The database knows what should happen, so every
`janitor_interval_s` (celery beat) this sweep compares it with what is happening:

- a job `queued` (prepare never began) or `reducing` (reduce never finished) for longer than
  `janitor_lost_s` while the cpu queue is empty, or stuck `preparing`/`reducing` for longer than
  `janitor_stale_s`: send its prepare / reduce again;
- a batch task never begun `janitor_lost_s` after it was sent, while its queue is empty and no task
  of its job finished for as long (lost), or begun but unfinished after `janitor_stale_s` (its
  worker died): send it again;
- a job `inferring` with every batch done (the reduce message was lost): move it on to reduce.

Beside it, beat runs `abort_abandoned_uploads` for direct uploads nobody completed.

Every task is idempotent, so a message that was only slow, not lost, running twice is harmless.
A PostgreSQL advisory lock keeps two janitors from sweeping at once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from hark.db import session_scope
from hark.jobstate import advance
from hark.models import Job, JobTask
from hark.queues import ABORT_ABANDONED_UPLOADS, CPU_QUEUE, JANITOR, PREPARE, REDUCE, queue_depths
from hark.status import ACTIVE, JobStatus
from hark.uploads import abort_abandoned
from worker.celery_app import app
from worker.tasks.common import settings
from worker.tasks.dispatch import send_infer

log = logging.getLogger("hark.janitor")

LOCK_ID = 0x4A414E49  # "JANI": one sweep at a time across the deployment


def _resend(job_id: uuid.UUID, task: str, reason: str, priority: int) -> None:
    log.warning("re-sending %s", task, extra={"job_id": str(job_id), "stage": "janitor", "code": reason})
    app.send_task(task, args=[str(job_id)], priority=priority)


def sweep(now: datetime | None = None) -> dict[str, int]:
    """One pass; returns how many messages of each kind it sent again (for logs and tests)."""
    cfg = settings()
    now = now or datetime.now(UTC)
    lost, stale = now - timedelta(seconds=cfg.janitor_lost_s), now - timedelta(seconds=cfg.janitor_stale_s)
    depths = queue_depths(app, cfg.broker_key_prefix)
    sent = {"prepare": 0, "infer": 0, "reduce": 0}
    with session_scope(cfg.database_url) as s:
        if not s.scalar(select(func.pg_try_advisory_xact_lock(LOCK_ID))):
            return sent
        jobs = s.execute(
            select(Job.id, Job.status, Job.updated_at, Job.options, Job.priority).where(Job.status.in_(ACTIVE))
        ).all()
        for job_id, status, updated_at, options, priority in jobs:
            cpu_idle = depths[CPU_QUEUE] == 0
            if status in (JobStatus.QUEUED, JobStatus.REDUCING) and (
                (updated_at < lost and cpu_idle) or updated_at < stale
            ):
                s.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now()))
                _resend(job_id, PREPARE if status == JobStatus.QUEUED else REDUCE, f"{status}_stuck", priority)
                sent["prepare" if status == JobStatus.QUEUED else "reduce"] += 1
            elif status == JobStatus.PREPARING and updated_at < stale:
                s.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now()))
                _resend(job_id, PREPARE, "prepare_stale", priority)
                sent["prepare"] += 1
            elif status == JobStatus.INFERRING:
                sent["infer"] += _sweep_batches(s, job_id, dict(options or {}), priority, depths, lost, stale)
                pending = s.scalar(
                    select(func.count()).select_from(JobTask).where(JobTask.job_id == job_id, JobTask.done_at.is_(None))
                )
                if not pending and advance(s, job_id, JobStatus.REDUCING, only_from=JobStatus.INFERRING):
                    _resend(job_id, REDUCE, "reduce_never_sent", priority)
                    sent["reduce"] += 1
    return sent


def _sweep_batches(
    s: Session, job_id: uuid.UUID, options: dict, priority: int, depths: dict[str, int], lost: datetime, stale: datetime
) -> int:
    rows = s.execute(select(JobTask).where(JobTask.job_id == job_id, JobTask.done_at.is_(None))).scalars().all()
    asr_pending = {r.batch_idx for r in rows if r.kind == "asr"}
    # A message a worker has reserved but not begun is out of its queue too; while the job's other
    # tasks keep finishing it is only waiting, so "lost" also needs the job to have stalled.
    last_done = s.scalar(select(func.max(JobTask.done_at)).where(JobTask.job_id == job_id))
    stalled = last_done is None or last_done < lost
    resend: set[tuple[int, str]] = set()
    for r in rows:
        began = r.started_at is not None and r.started_at >= r.enqueued_at
        if began and r.started_at is not None and r.started_at < stale and r.enqueued_at < stale:
            resend.add((r.batch_idx, r.kind))  # its worker died
        elif (
            not began
            and stalled
            and r.enqueued_at < lost
            and depths.get(r.kind, 0) == 0
            and (r.kind == "asr" or r.batch_idx not in asr_pending)
        ):
            resend.add((r.batch_idx, r.kind))  # its message was lost (kinds chained behind a pending ASR wait for it)
    # Kinds chained behind an ASR task that is being sent again go with it.
    resend |= {(r.batch_idx, r.kind) for r in rows if r.kind != "asr" and (r.batch_idx, "asr") in resend}
    if not resend:
        return 0
    pairs = sorted(resend)
    s.execute(
        update(JobTask)
        .where(JobTask.job_id == job_id, tuple_(JobTask.batch_idx, JobTask.kind).in_(pairs))
        .values(enqueued_at=func.now())
    )
    log.warning("re-sending %d batch tasks", len(pairs), extra={"job_id": str(job_id), "stage": "janitor"})
    done = s.scalars(
        select(JobTask.batch_idx).where(JobTask.job_id == job_id, JobTask.kind == "asr", JobTask.done_at.is_not(None))
    )
    send_infer(str(job_id), pairs, options, set(done), priority)
    return len(pairs)


@app.task(name=JANITOR, ignore_result=True)
def janitor() -> None:
    sent = sweep()
    if any(sent.values()):
        log.info("janitor sweep", extra={"stage": "janitor", "sent": sent})


@app.task(name=ABORT_ABANDONED_UPLOADS, ignore_result=True)
def abort_abandoned_uploads() -> dict[str, int]:
    """Abort direct uploads nobody completed within `HARK_UPLOAD_ABANDON_S` (their jobs fail
    `upload_abandoned`, their S3 parts are released)."""
    report = abort_abandoned(settings())
    return {"uploads": len(report.uploads), "orphans": report.orphans}
