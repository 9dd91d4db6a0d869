"""Jobs: create by uploading a recording, poll status, fetch the transcript."""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hark.db import session_scope
from hark.exports import FORMATS
from hark.jobstate import fail
from hark.models import Job, JobTask
from hark.queues import PREPARE
from hark.storage import MultipartWriter, out_key, raw_key
from web.auth import principal, require_key
from web.errors import ApiError, drain_body
from web.job_requests import UPLOAD_BODY, idempotency_key, job_for_key, parse_callback_url
from web.openapi import header, operation, query
from web.ratelimit import check_job_creation

bp = Blueprint("jobs", __name__, url_prefix="/v1")

OPTION_INTS = ("num_speakers", "min_speakers", "max_speakers")


def _settings():  # type: ignore[no-untyped-def]
    return current_app.extensions["hark.settings"]


def safe_filename(name: str | None) -> str:
    """Keep the original name recognisable in the object key, without path tricks or odd bytes."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return base[:200]


def parse_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate job options; unknown keys and bad values are a 400, not a surprise later."""
    allowed = set(OPTION_INTS) | {"language", "engines"}
    unknown = set(raw) - allowed
    if unknown:
        raise ApiError(400, "invalid_options", f"unknown options: {', '.join(sorted(unknown))}")
    options: dict[str, Any] = {}
    for key in OPTION_INTS:
        if raw.get(key) in (None, ""):
            continue
        try:
            value = int(raw[key])
        except (TypeError, ValueError):
            raise ApiError(400, "invalid_options", f"{key} must be an integer") from None
        if not 1 <= value <= 100:
            raise ApiError(400, "invalid_options", f"{key} must be between 1 and 100")
        options[key] = value
    if "min_speakers" in options and "max_speakers" in options and options["min_speakers"] > options["max_speakers"]:
        raise ApiError(400, "invalid_options", "min_speakers is larger than max_speakers")
    if raw.get("language"):
        if not re.fullmatch(r"[a-z]{2,3}", str(raw["language"])):
            raise ApiError(400, "invalid_options", "language must be an ISO 639 code such as 'en'")
        options["language"] = str(raw["language"])
    if raw.get("engines"):
        engines = raw["engines"]
        if not isinstance(engines, dict) or not all(k in ("asr", "embed", "emotion") for k in engines):
            raise ApiError(400, "invalid_options", "engines must map asr/embed/emotion to engine names")
        options["engines"] = {k: str(v) for k, v in engines.items()}
    return options


def job_view(job: Job, tasks_done: int) -> dict[str, Any]:
    total = job.tasks_total or 0
    if job.status == "done":
        fraction = 1.0
    elif job.status in ("inferring", "reducing") and total:
        fraction = round(0.1 + 0.85 * tasks_done / total, 4)
    else:
        fraction = {"uploading": 0.0, "queued": 0.0, "preparing": 0.05}.get(job.status, 0.0)
    view: dict[str, Any] = {
        "id": str(job.id),
        "status": job.status,
        "stage": job.status,
        "filename": job.filename,
        "bytes": job.bytes,
        "sha256": job.sha256,
        "duration_s": job.duration_s,
        "options": {k: v for k, v in (job.options or {}).items() if not k.startswith("source_")},
        "callback_url": job.callback_url,
        "progress": {
            "fraction": fraction,
            "segments_total": job.segments_total,
            "tasks_total": total,
            "tasks_done": tasks_done,
        },
        "timings": job.timings or {},
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.status == "done":
        view["links"] = {fmt: f"/v1/jobs/{job.id}/transcript?format={fmt}" for fmt in FORMATS}
    return view


@bp.post("/jobs")
@operation(
    "Upload a recording and start a job",
    responses={201: "Job", 200: "Job", 413: "Error", 415: "Error", 429: "Error", 503: "Error"},
    body=UPLOAD_BODY,
    headers=(header("Idempotency-Key", "same key and tenant: the same job is returned, no new upload"),),
)
@require_key("submit")
def create_job():  # type: ignore[no-untyped-def]
    """Stream a multipart upload (field `file`, optional `options` JSON or plain option fields) to
    S3, record the job and enqueue its preparation. A repeated Idempotency-Key answers with the
    job it made first (200) and does not count against the rate limit."""
    idem = idempotency_key()
    existing = job_for_key(idem) if idem else None
    if existing is not None:
        drain_body()
        return _job_response(existing)
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the recording as multipart/form-data with a 'file' field")
    check_job_creation(principal())
    settings = _settings()
    storage = current_app.extensions["hark.storage"]
    job_id = uuid.uuid4()
    sinks: list[tuple[str, MultipartWriter]] = []

    def sink(filename: str | None, content_type: str | None) -> MultipartWriter:
        if sinks:
            raise ApiError(400, "too_many_files", "upload one recording per job")
        name = safe_filename(filename)
        writer = storage.writer(raw_key(job_id, name), content_type or "application/octet-stream")
        sinks.append((name, writer))
        return writer

    request.upload_sink = sink
    try:
        files, form = request.files, request.form
        if "file" not in files or not sinks:
            raise ApiError(400, "missing_file", "the form has no 'file' field")
        name, writer = sinks[0]
        if writer.bytes_written == 0:
            raise ApiError(400, "empty_upload", "the uploaded file is empty")
        raw_options: dict[str, Any] = {}
        if form.get("options"):
            try:
                raw_options = json.loads(form["options"])
            except json.JSONDecodeError:
                raise ApiError(400, "invalid_options", "options must be a JSON object") from None
            if not isinstance(raw_options, dict):
                raise ApiError(400, "invalid_options", "options must be a JSON object")
        raw_options.update({k: form[k] for k in form if k not in ("options", "callback_url")})
        options = parse_options(raw_options)
        callback_url = parse_callback_url(form.get("callback_url"))
        writer.finish()
    except BaseException:
        for _, w in sinks:
            w.abort()
        raise

    try:
        with session_scope(settings.database_url) as s:
            s.add(
                Job(
                    id=job_id,
                    tenant_id=principal().tenant_id,
                    status="queued",
                    filename=name,
                    source_key=raw_key(job_id, name),
                    sha256=writer.sha256.hexdigest(),
                    bytes=writer.bytes_written,
                    options=options,
                    callback_url=callback_url,
                    idempotency_key=idem,
                )
            )
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer with its job.
        storage.delete_prefix(f"raw/{job_id}/")
        winner = job_for_key(idem) if idem else None
        if winner is None:
            raise
        return _job_response(winner)
    try:
        current_app.extensions["hark.celery"].send_task(PREPARE, args=[str(job_id)])
    except Exception as exc:  # broker down: the job must not sit queued forever without a reason
        with session_scope(settings.database_url) as s:
            fail(s, job_id, "enqueue_failed", f"could not reach the task broker: {type(exc).__name__}")
        raise ApiError(503, "broker_unavailable", "the task broker is not reachable; retry later") from exc
    return _job_response(job_id, status=201)


def _load(job_id: str) -> tuple[Job, int]:
    try:
        jid = uuid.UUID(job_id)
    except ValueError:
        raise ApiError(404, "job_not_found", "no such job") from None
    with session_scope(_settings().database_url) as s:
        job = s.scalar(select(Job).where(Job.id == jid, Job.tenant_id == principal().tenant_id))
        if job is None:
            raise ApiError(404, "job_not_found", "no such job")
        done = s.scalar(
            select(func.count()).select_from(JobTask).where(JobTask.job_id == jid, JobTask.done_at.is_not(None))
        )
    return job, int(done or 0)


def _job_response(job_id: uuid.UUID | str, status: int = 200) -> Response:
    job, done = _load(str(job_id))
    response = jsonify(job_view(job, done))
    response.status_code = status
    if status == 201:
        response.headers["Location"] = f"/v1/jobs/{job.id}"
    return response


@bp.get("/jobs/<job_id>")
@operation(
    "A job's status and progress",
    responses={200: "Job", 304: None},
    headers=(header("If-None-Match", "the ETag of an earlier answer: 304 while nothing changed"),),
)
@require_key("read")
def get_job(job_id: str):  # type: ignore[no-untyped-def]
    """The body's hash is its ETag, so a poller sending If-None-Match gets a bodiless 304 until
    the status or progress moves."""
    response = _job_response(job_id)
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/jobs/<job_id>/transcript")
@operation(
    "The finished job's transcript in one export format",
    responses={200: None, 409: "Error"},
    params=(query("format", {"enum": list(FORMATS)}, "export format (default json)"),),
)
@require_key("read")
def get_transcript(job_id: str):  # type: ignore[no-untyped-def]
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_format", f"format must be one of {', '.join(FORMATS)}")
    job, _ = _load(job_id)
    if job.status != "done":
        raise ApiError(409, "not_ready", f"the job is {job.status}; the transcript exists once it is done")
    body = current_app.extensions["hark.storage"].get_bytes(out_key(job.id, fmt))
    return Response(body, status=200, content_type=FORMATS[fmt])
