"""Webhook routes: a job's delivery history, and the tenant's signing secret (read, rotate)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hark.db import session_scope
from hark.models import WebhookAttempt, WebhookDelivery
from hark.webhooks import rotate_secret, tenant_secret
from web.auth import principal, require_key
from web.context import app_settings
from web.jobs import find_job
from web.openapi import operation

bp = Blueprint("webhooks", __name__, url_prefix="/v1")


@bp.get("/jobs/<job_id>/webhooks")
@operation("Webhook deliveries of a job, each with its attempts", responses={200: "WebhookDeliveries"})
@require_key("read")
def job_webhooks(job_id: str) -> ResponseReturnValue:
    job = find_job(job_id)
    with session_scope(app_settings().database_url) as s:
        deliveries = s.scalars(
            select(WebhookDelivery).where(WebhookDelivery.job_id == job.id).order_by(WebhookDelivery.id)
        ).all()
        attempts = s.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
        ).all()
    return jsonify(
        {
            "deliveries": [
                {
                    "id": d.id,
                    "event": d.event,
                    "url": d.url,
                    "state": d.state,
                    "attempts": [
                        {
                            "attempt": a.attempt,
                            "status_code": a.status_code,
                            "error": a.error,
                            "duration_ms": a.duration_ms,
                            "at": a.created_at.isoformat(),
                        }
                        for a in attempts
                        if a.delivery_id == d.id
                    ],
                }
                for d in deliveries
            ]
        }
    )


@bp.get("/webhooks/secret")
@operation("The tenant's webhook signing secret (HMAC-SHA256 key)", responses={200: "WebhookSecret"})
@require_key("admin")
def webhook_secret() -> ResponseReturnValue:
    with session_scope(app_settings().database_url) as s:
        return jsonify({"secret": tenant_secret(s, principal().tenant_id)})


@bp.post("/webhooks/secret/rotate")
@operation(
    "Replace the tenant's webhook signing secret; the old one also signs deliveries for a grace period",
    responses={200: "RotatedWebhookSecret"},
)
@require_key("admin")
def webhook_secret_rotate() -> ResponseReturnValue:
    settings = app_settings()
    with session_scope(settings.database_url) as s:
        secret = rotate_secret(s, principal().tenant_id)
    return jsonify({"secret": secret, "previous_valid_for_s": settings.webhook_secret_grace_s})
