"""The job status vocabulary. A leaf module (imports nothing from Hark) so the models, the state
machine, the API and the CLI client can all share it without import cycles."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's status. A str enum: members equal, format and serialise as the plain strings stored
    in `jobs.status` and shown by the API, so rows and JSON need no conversion."""

    UPLOADING = "uploading"
    QUEUED = "queued"
    PREPARING = "preparing"
    INFERRING = "inferring"
    REDUCING = "reducing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


JOB_STATUSES: tuple[JobStatus, ...] = tuple(JobStatus)
FINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})
# The statuses a worker still has work in (the janitor watches these).
ACTIVE = (JobStatus.QUEUED, JobStatus.PREPARING, JobStatus.INFERRING, JobStatus.REDUCING)
