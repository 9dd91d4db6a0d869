"""The janitor: finds work that was lost or whose worker died, and sends it again.

Celery delivers at least once, but only while the broker still holds the message: a worker killed
outright leaves its message unacknowledged until the visibility timeout (hours), and a broker that
restarts without persistence forgets its queues. The database knows what should happen, and every
running task holds a lease there that its process renews (worker/leases.py), so every
`janitor_interval_s` this sweep compares it with what is happening:

- a task whose lease ran out (prepare, reduce, or a batch of model work, begun and unfinished):
  its worker died; send it again under a new task id, which the lease is handed to, so the dead
  worker's unacknowledged copy, when Redis hands it back hours later, finds the work held or done
  and does nothing. A task holding a live lease is never sent again, however slow, unless it began
  more than `janitor_stale_s` ago (a hard deadline for a holder alive but stuck);
- a job `queued` (prepare never began) or `reducing` (reduce never began) for longer than
  `janitor_lost_s` while the cpu queue is empty: send its prepare / reduce again;
- a batch task never begun `janitor_lost_s` after it was sent, while its queue is empty and no task
  of its job finished for as long (lost): send it again;
- a job `inferring` with every batch done (the reduce message was lost): move it on to reduce.

diarize needs nothing: it is only a head start, and reduce clusters when its outcome is missing.
The sweep runs in the beat process itself (`run_forever`, started on `beat_init`), not as a
message on the cpu queue, so a CPU pool busy with a long prepare cannot delay recovery. Beside it,
beat sends `abort_abandoned_uploads` for direct uploads nobody completed.

Every task is idempotent, so a message that was only slow, not lost, running twice is harmless.
A PostgreSQL advisory lock keeps two janitors from sweeping at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from hark.db import session_scope
from hark.jobstate import advance
from hark.models import Job, JobTask, TaskLease
from hark.queues import ABORT_ABANDONED_UPLOADS, CPU_QUEUE, JANITOR, PREPARE, REDUCE, queue_depths
from hark.status import ACTIVE, JobStatus
from hark.uploads import abort_abandoned
from worker import leases
from worker.celery_app import app
from worker.tasks.common import settings
from worker.tasks.dispatch import send_infer

log = logging.getLogger("hark.janitor")

LOCK_ID = 0x4A414E49  # "JANI": one sweep at a time across the deployment


def _resend(s: Session, job_id: uuid.UUID, task: str, reason: str, priority: int) -> None:
    """Send a job's prepare or reduce again under a new task id, handing it the stage's lease
    until it is presumed lost, so no other copy runs it meanwhile and the next sweeps wait."""
    log.warning("re-sending %s", task, extra={"job_id": str(job_id), "stage": "janitor", "code": reason})
    task_id = str(uuid.uuid4())
    name = "prepare" if task == PREPARE else "reduce"
    leases.reserve(s, job_id, name, task_id, settings().janitor_lost_s)
    s.flush()
    app.send_task(task, args=[str(job_id)], priority=priority, task_id=task_id)


def sweep(now: datetime | None = None) -> dict[str, int]:
    """One pass; returns how many messages of each kind it sent again (for logs and tests)."""
    cfg = settings()
    depths = queue_depths(app, cfg.broker_key_prefix)
    sent = {"prepare": 0, "infer": 0, "reduce": 0}
    with session_scope(cfg.database_url) as s:
        if not s.scalar(select(func.pg_try_advisory_xact_lock(LOCK_ID))):
            return sent
        # The database's clock, the one leases are renewed by.
        now = now or s.scalar(select(func.now()))
        assert now is not None
        lost, stale = now - timedelta(seconds=cfg.janitor_lost_s), now - timedelta(seconds=cfg.janitor_stale_s)
        jobs = s.execute(
            select(Job.id, Job.status, Job.updated_at, Job.options, Job.priority).where(Job.status.in_(ACTIVE))
        ).all()
        # The lease of each job's prepare and reduce: (expires_at, acquired_at), absent when none.
        stage_leases = {
            (job_id, name): (expires, acquired)
            for job_id, name, expires, acquired in s.execute(
                select(TaskLease.job_id, TaskLease.name, TaskLease.expires_at, TaskLease.acquired_at).where(
                    TaskLease.name.in_(("prepare", "reduce"))
                )
            )
        }
        for job_id, status, updated_at, options, priority in jobs:
            cpu_idle = depths[CPU_QUEUE] == 0
            stage = {JobStatus.QUEUED: "prepare", JobStatus.PREPARING: "prepare", JobStatus.REDUCING: "reduce"}.get(
                status
            )
            lease = stage_leases.get((job_id, stage)) if stage else None
            task = PREPARE if stage == "prepare" else REDUCE
            if stage is not None and lease is not None and status != JobStatus.QUEUED:
                expires, acquired = lease
                if expires < now or acquired < stale:
                    _resend(s, job_id, task, f"{stage}_dead", priority)  # its worker died (or is stuck)
                    sent[stage] += 1
            elif (
                stage is not None
                and status in (JobStatus.QUEUED, JobStatus.REDUCING)
                and ((updated_at < lost and cpu_idle) or updated_at < stale)
            ):
                s.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now()))
                _resend(s, job_id, task, f"{status}_stuck", priority)
                sent[stage] += 1
            elif status == JobStatus.PREPARING and updated_at < stale:
                s.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now()))
                _resend(s, job_id, PREPARE, "prepare_stale", priority)
                sent["prepare"] += 1
            elif status == JobStatus.INFERRING:
                sent["infer"] += _sweep_batches(s, job_id, dict(options or {}), priority, depths, now, lost, stale)
                pending = s.scalar(
                    select(func.count()).select_from(JobTask).where(JobTask.job_id == job_id, JobTask.done_at.is_(None))
                )
                if not pending and advance(s, job_id, JobStatus.REDUCING, only_from=JobStatus.INFERRING):
                    _resend(s, job_id, REDUCE, "reduce_never_sent", priority)
                    sent["reduce"] += 1
    return sent


def _sweep_batches(
    s: Session,
    job_id: uuid.UUID,
    options: dict,
    priority: int,
    depths: dict[str, int],
    now: datetime,
    lost: datetime,
    stale: datetime,
) -> int:
    rows = s.execute(select(JobTask).where(JobTask.job_id == job_id, JobTask.done_at.is_(None))).scalars().all()
    live = set(
        s.scalars(
            select(TaskLease.name).where(
                TaskLease.job_id == job_id, TaskLease.name.like("infer:%"), TaskLease.expires_at >= now
            )
        )
    )
    asr_pending = {r.batch_idx for r in rows if r.kind == "asr"}
    # A message a worker has reserved but not begun is out of its queue too; while the job's other
    # tasks keep finishing it is only waiting, so "lost" also needs the job to have stalled.
    last_done = s.scalar(select(func.max(JobTask.done_at)).where(JobTask.job_id == job_id))
    stalled = last_done is None or last_done < lost
    resend: set[tuple[int, str]] = set()
    for r in rows:
        began = r.started_at is not None and r.started_at >= r.enqueued_at
        if began and r.started_at is not None and (f"infer:{r.batch_idx}:{r.kind}" not in live or r.started_at < stale):
            resend.add((r.batch_idx, r.kind))  # its worker died (its lease ran out), or is stuck
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


def run_forever() -> None:
    """Sweep every `janitor_interval_s` for as long as the (beat) process lives; a failed sweep
    (database or broker away) is logged and tried again at the next interval."""
    interval = settings().janitor_interval_s
    log.info("janitor sweeping every %.1f s", interval, extra={"stage": "janitor"})
    while True:
        time.sleep(interval)
        try:
            janitor()
        except Exception:
            log.warning("janitor sweep failed", extra={"stage": "janitor"}, exc_info=True)


@app.task(name=ABORT_ABANDONED_UPLOADS, ignore_result=True)
def abort_abandoned_uploads() -> dict[str, int]:
    """Abort direct uploads nobody completed within `HARK_UPLOAD_ABANDON_S` (their jobs fail
    `upload_abandoned`, their S3 parts are released)."""
    report = abort_abandoned(settings())
    return {"uploads": len(report.uploads), "orphans": report.orphans}
