"""What job creation reads besides the upload itself: the webhook target, the Idempotency-Key,
and the multipart body as the OpenAPI document describes it."""

from __future__ import annotations

import re
import uuid

from flask import request
from sqlalchemy import select

from hark.callbacks import Allowance, CallbackRefused, resolve
from hark.db import session_scope
from hark.models import Job
from web.auth import principal
from web.context import app_settings
from web.errors import ApiError

UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "options": {"type": "string", "description": "JSON object of job options"},
                    "callback_url": {
                        "type": "string",
                        "description": "http(s) URL for the signed job.done / job.failed webhook",
                    },
                    "num_speakers": {"type": "integer"},
                    "min_speakers": {"type": "integer"},
                    "max_speakers": {"type": "integer"},
                    "language": {"type": "string"},
                    "channels": {"enum": ["mix", "separate"], "description": "separate: one speaker per channel"},
                    "channel_names": {"type": "string", "description": "comma-separated speaker label per channel"},
                    "enroll": {"type": "string", "description": "enroll the main speaker as this person"},
                },
            }
        }
    },
}


def parse_callback_url(raw: str | None) -> str | None:
    """A webhook target must be an absolute http(s) URL whose host resolves to public addresses
    only (hark/callbacks.py; the worker checks again when it delivers): anything else is a 400 now,
    not a request from inside our network later."""
    if not raw:
        return None
    if len(raw) > 2000:
        raise ApiError(400, "invalid_callback_url", "callback_url is longer than 2000 characters")
    allow = Allowance.parse(app_settings().webhook_allow)
    try:
        resolve(raw, allow)
    except CallbackRefused as exc:
        raise ApiError(400, "invalid_callback_url", str(exc)) from None
    return raw


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not re.fullmatch(r"[\x21-\x7e]{1,200}", key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1-200 visible ASCII characters")
    return key


def job_for_key(key: str) -> uuid.UUID | None:
    """The tenant's job made with this Idempotency-Key, if any."""
    with session_scope(app_settings().database_url) as s:
        return s.scalar(select(Job.id).where(Job.tenant_id == principal().tenant_id, Job.idempotency_key == key))
