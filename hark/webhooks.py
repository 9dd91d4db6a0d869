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
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hark.models import Job, Tenant, WebhookDelivery
from hark.queues import WEBHOOK  # noqa: F401 - the task's name, imported from here by callers

EVENTS = {"done": "job.done", "failed": "job.failed"}
SIGNATURE_HEADER = "X-Hark-Signature"


def tenant_secret(session: Session, tenant_id: uuid.UUID) -> str:
    """The tenant's signing secret, made on first use."""
    tenant = session.get(Tenant, tenant_id, with_for_update=True)
    assert tenant is not None
    if not tenant.webhook_secret:
        tenant.webhook_secret = "whsec_" + secrets.token_urlsafe(32)
    return tenant.webhook_secret


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """Receiver side check (used by tests and documented for customers)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        expected = sign(secret, int(parts["t"]), body)
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(expected, header)


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
