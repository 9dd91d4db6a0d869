"""What every way of submitting a recording shares (multipart upload, direct upload, an object
already in the bucket, archive batches): priority, dedupe by content, and enqueueing prepare."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hark.models import Job
from hark.queues import PREPARE, PRIORITIES
from hark.status import ACTIVE, JobStatus
from web.errors import ApiError

log = logging.getLogger("hark.web")
SHA256 = re.compile(r"[0-9a-f]{64}")
# A job that failed or was cancelled is no reason to refuse a second try with the same file.
DEDUPE_STATUSES = (JobStatus.UPLOADING, *ACTIVE, JobStatus.DONE)


def parse_priority(raw: Any, default: str) -> int:
    """`interactive` (served first) or `overnight` (archives) → the queue priority."""
    name = default if raw in (None, "") else str(raw)
    if name not in PRIORITIES:
        raise ApiError(400, "invalid_priority", f"priority must be one of {', '.join(PRIORITIES)}")
    return PRIORITIES[name]


def priority_name(value: int) -> str:
    return next((name for name, v in PRIORITIES.items() if v == value), str(value))


def parse_flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    return str(raw or "").lower() in {"1", "true", "yes", "on"}


def parse_sha256(raw: Any) -> str | None:
    if raw in (None, ""):
        return None
    value = str(raw).lower()
    if not SHA256.fullmatch(value):
        raise ApiError(400, "invalid_sha256", "sha256 must be 64 hexadecimal characters")
    return value


def existing_job(s: Session, tenant_id: uuid.UUID, sha256: str | None) -> uuid.UUID | None:
    """The tenant's live job for this content, if any. Takes a transaction-scoped advisory lock on
    (tenant, sha256) first, so two simultaneous submissions of one file cannot both create a job:
    the caller inserts its new job in the same transaction."""
    if sha256 is None:
        return None
    s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"{tenant_id}:{sha256}"})
    return s.scalar(
        select(Job.id)
        .where(Job.tenant_id == tenant_id, Job.sha256 == sha256, Job.status.in_(DEDUPE_STATUSES))
        .order_by(Job.created_at)
        .limit(1)
    )


def enqueue_prepare(job_id: uuid.UUID, priority: int) -> None:
    """Send prepare at the job's priority. If the broker is away, the recording is safe in S3 and
    the job row says queued, so the janitor sends its preparation once the broker is back: the
    client gets its job and need not retry."""
    try:
        current_app.extensions["hark.celery"].send_task(PREPARE, args=[str(job_id)], priority=priority)
    except Exception:  # noqa: BLE001 - any broker failure (kombu, redis, socket); the job row is safe
        log.warning("broker unreachable; the janitor will enqueue the job", extra={"job_id": str(job_id)})
