"""Jobs as a collection: list with filters and cursor pagination, cancel, delete.

Every query is bounded by the caller's tenant, so another tenant's job is simply not found (404),
never forbidden (which would confirm it exists). List items are summaries; the full view with
progress is `GET /v1/jobs/<id>`.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import delete

from hark.db import session_scope
from hark.jobstate import FINAL, JOB_STATUSES, cancel
from hark.models import Job
from web.auth import principal, require_key
from web.context import app_settings, app_storage
from web.errors import ApiError
from web.jobs import find_job, job_response
from web.openapi import operation, query
from web.status_read import read_list

bp = Blueprint("job_actions", __name__, url_prefix="/v1")

MAX_LIMIT = 100


def job_summary(job: Job | SimpleNamespace) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "status": job.status,
        "filename": job.filename,
        "duration_s": job.duration_s,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "url": f"/v1/jobs/{job.id}",
    }


def _datetime_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid_filter", f"{name} must be an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise ApiError(400, "invalid_filter", f"{name} needs a time zone offset (e.g. 2026-11-23T08:00:00+00:00)")
    return value


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, jid = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), uuid.UUID(jid)
    except (ValueError, TypeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from None


def _limit() -> int:
    raw = request.args.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_filter", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


@bp.get("/jobs")
@operation(
    "List the tenant's jobs, newest first",
    responses={200: "JobList"},
    params=(
        query("status", {"enum": list(JOB_STATUSES)}),
        query("batch_id", {"type": "string", "format": "uuid"}, "jobs of one archive batch"),
        query("created_after", {"type": "string", "format": "date-time"}, "inclusive lower bound"),
        query("created_before", {"type": "string", "format": "date-time"}, "exclusive upper bound"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        query("cursor", {"type": "string"}, "next_cursor of the previous page"),
    ),
)
@require_key("read")
def list_jobs() -> ResponseReturnValue:
    """Keyset pagination on (created_at, id): pages stay stable while new jobs arrive. Read on the
    kept connection of the status polls (web/status_read.py): a console refreshing its list is a
    poller too."""
    filters: dict[str, Any] = {}
    status = request.args.get("status")
    if status is not None:
        if status not in JOB_STATUSES:
            raise ApiError(400, "invalid_filter", f"status must be one of {', '.join(JOB_STATUSES)}")
        filters["status"] = status
    batch_id = request.args.get("batch_id")
    if batch_id is not None:
        try:
            filters["batch_id"] = uuid.UUID(batch_id)
        except ValueError:
            raise ApiError(400, "invalid_filter", "batch_id must be a UUID") from None
    for name in ("created_after", "created_before"):
        value = _datetime_arg(name)
        if value is not None:
            filters[name] = value
    if request.args.get("cursor"):
        filters["cursor"] = decode_cursor(request.args["cursor"])
    limit = _limit()
    jobs = read_list(current_app.extensions["hark.reader"], principal().tenant_id, limit + 1, **filters)
    page = jobs[:limit]
    body: dict[str, Any] = {
        "jobs": [job_summary(j) for j in page],
        "next_cursor": encode_cursor(page[-1].created_at, page[-1].id) if len(jobs) > limit else None,
    }
    return jsonify(body)


@bp.post("/jobs/<job_id>/cancel")
@operation("Cancel an unfinished job; its queued work is skipped", responses={200: "Job", 409: "Error"})
@require_key("submit")
def cancel_job(job_id: str) -> ResponseReturnValue:
    job = find_job(job_id)
    with session_scope(app_settings().database_url) as s:
        if not cancel(s, job.id):
            raise ApiError(409, "already_finished", f"the job is already {job.status}")
    return job_response(job.id)


@bp.delete("/jobs/<job_id>")
@operation("Delete a job: its stored objects (raw/, pcm/, out/) and all its rows", responses={204: None, 503: "Error"})
@require_key("admin")
def delete_job(job_id: str) -> ResponseReturnValue:
    """An unfinished job is cancelled first so no worker writes for it again. Objects go before
    rows: if S3 fails the job is still there to delete again, never an orphan nobody can find."""
    job = find_job(job_id)
    with session_scope(app_settings().database_url) as s:
        if job.status not in FINAL:
            cancel(s, job.id)
    storage = app_storage()
    try:
        for prefix in (f"raw/{job.id}/", f"pcm/{job.id}.", f"out/{job.id}/"):
            storage.delete_prefix(prefix)
    except Exception as exc:
        raise ApiError(503, "storage_unavailable", "could not delete the job's objects; retry later") from exc
    with session_scope(app_settings().database_url) as s:
        s.execute(delete(Job).where(Job.id == job.id, Job.tenant_id == principal().tenant_id))
    return "", 204
