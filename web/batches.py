"""Archive batches: many recordings in one request, one job each, followed as a group.

`POST /v1/batches` takes either a multipart form with many files (each streamed to S3 as it
arrives, like a single upload) or JSON naming a prefix of the tenant's inbox. Batches default to
the `overnight` priority, so the night's archive waits behind interactive work in every queue.
`GET /v1/batches/<id>` aggregates its jobs' status and progress.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hark.db import session_scope
from hark.jobstate import FINAL
from hark.models import Batch, Job
from hark.status import JobStatus
from hark.storage import MultipartWriter, in_inbox, inbox_prefix, raw_key
from web.auth import principal, require_key
from web.bodies import read_json
from web.context import app_settings, app_storage
from web.errors import ApiError
from web.jobs import form_options, parse_options, safe_filename
from web.openapi import operation
from web.progress import TaskCounts, job_progress, task_counts_of
from web.ratelimit import RateLimited, check_job_room, count_jobs
from web.submit import enqueue_prepare, existing_job, parse_flag, parse_priority, priority_name

bp = Blueprint("batches", __name__, url_prefix="/v1")

MAX_BATCH_JOBS = 10_000


@dataclass
class Source:
    """One recording of the batch, already in the bucket."""

    job_id: uuid.UUID
    filename: str
    key: str
    size: int
    sha256: str | None = None


@dataclass
class Plan:
    name: str
    options: dict[str, Any]
    priority: int
    force: bool
    sources: list[Source] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


@bp.post("/batches")
@operation(
    "An archive batch: many recordings (multipart `file` fields) or an inbox prefix (JSON), one job each",
    responses={201: "Batch", 413: "Error", 429: "Error"},
    body={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "options": {"type": "string"},
                        "priority": {"enum": ["interactive", "overnight"]},
                        "name": {"type": "string"},
                        "force": {"type": "string"},
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["prefix"],
                    "properties": {
                        "prefix": {"type": "string"},
                        "options": {"type": "object"},
                        "priority": {"enum": ["interactive", "overnight"]},
                        "name": {"type": "string"},
                        "force": {"type": "boolean"},
                    },
                }
            },
        },
    },
)
@require_key("submit")
@check_job_room  # a key at its limit is refused before its files are read
def create_batch() -> ResponseReturnValue:
    plan = _from_prefix(read_json()) if request.is_json else _from_files()
    if not plan.sources:
        raise ApiError(400, "empty_batch", "the batch holds no recordings")
    try:
        count_jobs(len(plan.sources))
    except RateLimited:
        _discard_uploads(plan.sources)
        raise
    tenant_id = principal().tenant_id
    batch_id = uuid.uuid4()
    created: list[tuple[uuid.UUID, int]] = []
    duplicates: list[tuple[Source, uuid.UUID]] = []
    with session_scope(app_settings().database_url) as s:
        s.add(Batch(id=batch_id, tenant_id=tenant_id, name=plan.name, priority=plan.priority))
        s.flush()
        for src in plan.sources:
            duplicate = None if plan.force else existing_job(s, tenant_id, src.sha256)
            if duplicate is not None:
                duplicates.append((src, duplicate))
                continue
            s.add(
                Job(
                    id=src.job_id,
                    tenant_id=tenant_id,
                    status=JobStatus.QUEUED,
                    filename=src.filename,
                    source_key=src.key,
                    sha256=src.sha256,
                    bytes=src.size,
                    options=plan.options,
                    priority=plan.priority,
                    batch_id=batch_id,
                )
            )
            created.append((src.job_id, plan.priority))
    _discard_uploads([src for src, _ in duplicates])
    for job_id, priority in created:
        enqueue_prepare(job_id, priority)
    view = _batch_view(batch_id)
    view["duplicates"] = [{"filename": src.filename, "job_id": str(dup)} for src, dup in duplicates]
    view["rejected"] = plan.rejected
    response = jsonify(view)
    response.status_code = 201
    response.headers["Location"] = f"/v1/batches/{batch_id}"
    return response


def _discard_uploads(sources: list[Source]) -> None:
    """Delete the copies this request uploaded of `sources` (never inbox objects)."""
    storage = app_storage()
    for src in sources:
        if src.key == raw_key(src.job_id, src.filename):
            storage.delete_prefix(raw_key(src.job_id, ""))


def _from_files() -> Plan:
    """Every file field of the form becomes a recording; each is streamed to S3 and finished as
    soon as the next begins, so memory stays one part whatever the number of files."""
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send files as multipart/form-data, or JSON with a prefix")
    storage = app_storage()
    writers: list[tuple[Source, MultipartWriter]] = []

    def sink(filename: str | None, content_type: str | None) -> MultipartWriter:
        if writers:
            writers[-1][1].finish()
        if len(writers) >= MAX_BATCH_JOBS:
            raise ApiError(400, "too_many_files", f"at most {MAX_BATCH_JOBS} recordings per batch")
        job_id = uuid.uuid4()
        name = safe_filename(filename)
        writer = storage.writer(raw_key(job_id, name), content_type or "application/octet-stream")
        writers.append((Source(job_id, name, raw_key(job_id, name), 0), writer))
        return writer

    request.upload_sink = sink  # type: ignore[attr-defined]  # app.request_class is StreamingRequest
    try:
        form = request.form  # parsing the body streams every file through `sink`
        if writers:
            writers[-1][1].finish()
        plan = Plan(
            name=str(form.get("name") or "")[:200],
            options=parse_options(form_options(form)),
            priority=parse_priority(form.get("priority"), "overnight"),
            force=parse_flag(form.get("force")),
        )
    except BaseException:
        for src, w in writers:
            w.abort()
            storage.delete_prefix(raw_key(src.job_id, ""))
        raise
    for src, w in writers:
        if w.bytes_written == 0:
            plan.rejected.append({"filename": src.filename, "code": "empty_upload"})
            storage.delete_prefix(raw_key(src.job_id, ""))
            continue
        src.size, src.sha256 = w.bytes_written, w.sha256.hexdigest()
        plan.sources.append(src)
    return plan


def _from_prefix(body: Any) -> Plan:
    """`{"prefix": "inbox/<tenant>/…", "options"?, "priority"?, "name"?}`: one job per object."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    tenant_id = principal().tenant_id
    prefix = body.get("prefix")
    if not isinstance(prefix, str) or not (
        prefix == inbox_prefix(tenant_id) or in_inbox(tenant_id, prefix.rstrip("/"))
    ):
        raise ApiError(403, "key_not_allowed", f"prefix must lie under this tenant's prefix {inbox_prefix(tenant_id)}")
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise ApiError(400, "invalid_options", "options must be a JSON object")
    plan = Plan(
        name=str(body.get("name") or prefix)[:200],
        options=parse_options(raw_options),
        priority=parse_priority(body.get("priority"), "overnight"),
        force=parse_flag(body.get("force")),
    )
    storage = app_storage()
    for key, size in storage.objects(prefix):
        if key.endswith("/") or not in_inbox(tenant_id, key):
            continue
        if size == 0:
            plan.rejected.append({"filename": key, "code": "empty_upload"})
            continue
        if len(plan.sources) >= MAX_BATCH_JOBS:
            raise ApiError(400, "too_many_files", f"at most {MAX_BATCH_JOBS} recordings per batch")
        plan.sources.append(Source(uuid.uuid4(), key.rsplit("/", 1)[-1][:500], key, size))
    return plan


def batch_status(statuses: list[str]) -> str:
    """`running` until every job is final; then `done`, `failed` (nothing done) or `partial`."""
    if not statuses or any(st not in FINAL for st in statuses):
        return "running" if any(st not in (JobStatus.QUEUED, JobStatus.UPLOADING) for st in statuses) else "queued"
    if all(st == JobStatus.DONE for st in statuses):
        return "done"
    return "partial" if any(st == JobStatus.DONE for st in statuses) else "failed"


def _batch_view(batch_id: uuid.UUID) -> dict[str, Any]:
    with session_scope(app_settings().database_url) as s:
        batch = s.scalar(select(Batch).where(Batch.id == batch_id, Batch.tenant_id == principal().tenant_id))
        if batch is None:
            raise ApiError(404, "batch_not_found", "no such batch")
        jobs = s.scalars(select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.filename)).all()
        running = [job for job in jobs if job.status not in FINAL]
        tasks = task_counts_of(s, [job.id for job in running])
        progress = {job.id: job_progress(job, tasks.get(job.id) or TaskCounts()) for job in running}
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    fractions = [1.0 if job.status in FINAL else progress[job.id].fraction for job in jobs]
    audio_total = sum(job.duration_s or job.declared_duration_s or 0.0 for job in jobs)
    audio_done = sum(
        (job.duration_s or 0.0) if job.status in FINAL else (progress[job.id].audio_s_done or 0.0) for job in jobs
    )
    return {
        "id": str(batch.id),
        "name": batch.name,
        "priority": priority_name(batch.priority),
        "status": batch_status([job.status for job in jobs]),
        "jobs_total": len(jobs),
        "counts": counts,
        "progress": {
            "fraction": round(sum(fractions) / len(fractions), 4) if fractions else 0.0,
            "audio_s_done": round(audio_done, 3),
            "audio_s_known": round(audio_total, 3),
        },
        "jobs": [
            {"id": str(job.id), "filename": job.filename, "status": job.status, "error": job.error_code} for job in jobs
        ],
        "created_at": batch.created_at.isoformat() if batch.created_at else None,
    }


@bp.get("/batches/<batch_id>")
@operation("A batch's aggregate status, progress and jobs", responses={200: "Batch"})
@require_key("read")
def get_batch(batch_id: str) -> ResponseReturnValue:
    try:
        bid = uuid.UUID(batch_id)
    except ValueError:
        raise ApiError(404, "batch_not_found", "no such batch") from None
    return jsonify(_batch_view(bid))
