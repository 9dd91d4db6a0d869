"""deliver_webhook(delivery): POST one signed job event, retrying with exponential backoff.

Every try is recorded in `webhook_attempts`; a 2xx ends the delivery as delivered, and after
`webhook_max_attempts` failures it ends as failed. The job itself is never touched. Deliveries run
on their own queue (`webhooks`), each try within `webhook_timeout_s`, to public addresses only
(hark/callbacks.py): a receiver that never answers delays other webhooks, never decoding.
"""

from __future__ import annotations

import logging
import time

from celery import Task
from sqlalchemy import func

from hark.callbacks import Allowance, post
from hark.db import session_scope
from hark.models import Job, WebhookAttempt, WebhookDelivery
from hark.webhooks import SIGNATURE_HEADER, WEBHOOK, payload, sign, signing_secrets
from worker.celery_app import app
from worker.tasks.common import settings

log = logging.getLogger("hark.webhooks")


# time_limit: a backstop over the per-try budget (name resolution has no timeout of its own).
@app.task(name=WEBHOOK, bind=True, max_retries=None, time_limit=120)
def deliver_webhook(self: Task, delivery_id: int) -> None:
    cfg = settings()
    with session_scope(cfg.database_url) as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.state != "pending":
            return
        job = s.get(Job, delivery.job_id)
        assert job is not None
        body = payload(job, delivery.event)
        keys = signing_secrets(s, delivery.tenant_id, cfg.webhook_secret_grace_s)
        url, event, attempt = delivery.url, delivery.event, delivery.attempts + 1
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "hark-webhooks",
        "X-Hark-Event": event,
        "X-Hark-Delivery": str(delivery_id),
        SIGNATURE_HEADER: sign(keys, int(time.time()), body),
    }
    started = time.monotonic()
    status, error = post(url, body, headers, Allowance.parse(cfg.webhook_allow), cfg.webhook_timeout_s)
    ok = status is not None and 200 <= status < 300
    last = not ok and attempt >= cfg.webhook_max_attempts
    with session_scope(cfg.database_url) as s:
        s.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                attempt=attempt,
                status_code=status,
                error=error,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        )
        delivery = s.get(WebhookDelivery, delivery_id, with_for_update=True)
        assert delivery is not None
        delivery.attempts = attempt
        if ok or last:
            delivery.state = "delivered" if ok else "failed"
            delivery.finished_at = func.now()
    log.info("webhook attempt", extra={"delivery": delivery_id, "attempt": attempt, "status": status})
    if not ok and not last:
        raise self.retry(countdown=cfg.webhook_backoff_s * 2 ** (attempt - 1))
