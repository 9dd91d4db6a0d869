"""Webhooks: signed POSTs telling a job's callback URL that it finished (done or failed).

A delivery row per (job, event) is claimed with an insert that ignores duplicates, so however many
tasks notice the job finishing, one delivery is enqueued. The body is signed with the tenant's
secret: header `X-Hark-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, so a
receiver can check both origin and freshness.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hark.models import Job, Tenant, WebhookDelivery
from hark.queues import WEBHOOK  # noqa: F401 - the task's name, imported from here by callers
from hark.status import JobStatus

EVENTS: dict[str, str] = {JobStatus.DONE: "job.done", JobStatus.FAILED: "job.failed"}
SIGNATURE_HEADER = "X-Hark-Signature"


# How old a signature's timestamp may be (either way, for clock skew) when a receiver verifies it.
TOLERANCE_S = 300


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def tenant_secret(session: Session, tenant_id: uuid.UUID) -> str:
    """The tenant's signing secret, made on first use."""
    tenant = session.get(Tenant, tenant_id, with_for_update=True)
    assert tenant is not None
    if not tenant.webhook_secret:
        tenant.webhook_secret = _new_secret()
    return tenant.webhook_secret


def signing_secrets(session: Session, tenant_id: uuid.UUID, grace_s: float) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one while the
    last rotation is younger than `grace_s`."""
    current = tenant_secret(session, tenant_id)
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    rotated = tenant.webhook_secret_rotated_at
    if tenant.webhook_secret_previous and rotated and datetime.now(UTC) - rotated < timedelta(seconds=grace_s):
        return [current, tenant.webhook_secret_previous]
    return [current]


def rotate_secret(session: Session, tenant_id: uuid.UUID) -> str:
    """A new signing secret; the one it replaces keeps signing during the grace period."""
    previous = tenant_secret(session, tenant_id)
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    tenant.webhook_secret_previous, tenant.webhook_secret = previous, _new_secret()
    tenant.webhook_secret_rotated_at = datetime.now(UTC)
    return tenant.webhook_secret


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | list[str], timestamp: int, body: bytes) -> str:
    """The signature header: one `v1=` per secret (several during a rotation's grace period)."""
    keys = [secret] if isinstance(secret, str) else secret
    return ",".join([f"t={timestamp}", *(f"v1={_mac(k, timestamp, body)}" for k in keys)])


def verify(secret: str, header: str, body: bytes, tolerance_s: float = TOLERANCE_S, now: float | None = None) -> bool:
    """Receiver side check (used by tests and documented for customers): some `v1=` signature is
    the body's under `secret`, and the timestamp is within `tolerance_s` of now (no replays)."""
    pairs = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in pairs if k == "t"]
    if len(stamps) != 1:
        return False
    try:
        timestamp = int(stamps[0])
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for k, v in pairs if k == "v1")


def payload(job: Job, event: str) -> bytes:
    body: dict[str, Any] = {
        "event": event,
        "job": {
            "id": str(job.id),
            "status": job.status,
            "filename": job.filename,
            "duration_s": job.duration_s,
            "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "url": f"/v1/jobs/{job.id}",
        },
    }
    return json.dumps(body, sort_keys=True).encode("utf-8")


def claim_delivery(session: Session, job_id: uuid.UUID) -> int | None:
    """Record the webhook owed for a finished job; returns the new delivery's id, or None when
    nothing is owed (no callback, not finished with an event) or it was already claimed."""
    job = session.scalar(select(Job).where(Job.id == job_id))
    if job is None or not job.callback_url or job.status not in EVENTS:
        return None
    stmt = (
        insert(WebhookDelivery)
        .values(job_id=job.id, tenant_id=job.tenant_id, event=EVENTS[job.status], url=job.callback_url)
        .on_conflict_do_nothing(constraint="webhook_deliveries_job_event")
        .returning(WebhookDelivery.id)
    )
    return session.scalar(stmt)
