"""The job status state machine from the design brief.

uploading → queued → preparing → inferring → reducing → done, with failed/cancelled reachable from
any unfinished state. Transitions are done with a conditional UPDATE so two workers racing on the
same job (redelivery, duplicate reduce) cannot both advance it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, func, update
from sqlalchemy.orm import Session

from hark.models import Job
from hark.status import FINAL, JOB_STATUSES, JobStatus

__all__ = ["FINAL", "JOB_STATUSES", "PREDECESSORS", "InvalidTransition", "JobStatus", "advance", "cancel", "fail"]

# Allowed predecessors of each status. A stage may be re-entered (a redelivered task restarts it).
PREDECESSORS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.UPLOADING: frozenset(),
    JobStatus.QUEUED: frozenset({JobStatus.UPLOADING}),
    JobStatus.PREPARING: frozenset({JobStatus.QUEUED, JobStatus.PREPARING}),
    JobStatus.INFERRING: frozenset({JobStatus.PREPARING, JobStatus.INFERRING}),
    JobStatus.REDUCING: frozenset({JobStatus.INFERRING, JobStatus.REDUCING}),
    JobStatus.DONE: frozenset({JobStatus.REDUCING}),
    JobStatus.FAILED: frozenset(set(JOB_STATUSES) - FINAL),
    JobStatus.CANCELLED: frozenset(set(JOB_STATUSES) - FINAL),
}


class InvalidTransition(Exception):
    pass


def advance(session: Session, job_id: uuid.UUID, to: str, *, only_from: str | None = None, **values: Any) -> bool:
    """Move a job to `to` if its current status allows it; returns False when it did not
    (already further along, finished, or cancelled). `only_from` narrows the allowed predecessors to
    one (e.g. the janitor moves only a job still inferring, not one a worker moved meanwhile).
    Extra column values are set in the same UPDATE. `stage_started_at` moves only when the status
    changes, so throughput (and the ETA shown to clients) is measured from when the stage really
    began, not from a redelivery."""
    if to not in PREDECESSORS:
        raise InvalidTransition(to)
    allowed = PREDECESSORS[JobStatus(to)]
    if only_from is not None:
        allowed = allowed & {JobStatus(only_from)}
    stage_start = case((Job.status == to, Job.stage_started_at), else_=func.now())
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(allowed))
        .values(status=to, updated_at=func.now(), stage_started_at=stage_start, **values)
        .returning(Job.id)
    )
    return session.execute(stmt).first() is not None


def fail(session: Session, job_id: uuid.UUID, code: str, message: str) -> bool:
    """Mark a job failed with a machine-readable code and a human message."""
    return advance(
        session, job_id, JobStatus.FAILED, error_code=code, error_message=message[:2000], finished_at=func.now()
    )


def cancel(session: Session, job_id: uuid.UUID) -> bool:
    """Stop a job: workers see `cancelled` before each task and skip its remaining work."""
    return advance(session, job_id, JobStatus.CANCELLED, finished_at=func.now())
