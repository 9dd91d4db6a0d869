"""Jobs: create by uploading a recording, poll status, fetch the transcript."""
from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import func, select

from hark.db import session_scope
from hark.exports import FORMATS
from hark.models import Job, JobTask, Segment
from hark.queues import PREPARE
from hark.storage import MultipartWriter, out_key, raw_key
from web.auth import principal, require_key
from web.errors import ApiError

bp = Blueprint("jobs", __name__, url_prefix="/v1")
log = logging.getLogger("hark.web")

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


def job_view(job: Job, tasks_done: int, failed_segments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
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
        # Segments an engine could not process (poison segments) leave the job done but partial.
        view["partial"] = bool(failed_segments)
        view["failed_segments"] = failed_segments or []
    return view


@bp.post("/jobs")
@require_key("submit")
def create_job():  # type: ignore[no-untyped-def]
    """Stream a multipart upload (field `file`, optional `options` JSON or plain option fields) to
    S3, record the job and enqueue its preparation."""
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the recording as multipart/form-data with a 'file' field")
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
        raw_options.update({k: form[k] for k in form if k != "options"})
        options = parse_options(raw_options)
        writer.finish()
    except BaseException:
        for _, w in sinks:
            w.abort()
        raise

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
            )
        )
    try:
        current_app.extensions["hark.celery"].send_task(PREPARE, args=[str(job_id)])
    except Exception:  # broker away: the recording is safe in S3 and the job row says queued, so
        # the janitor sends its preparation once the broker is back; the client need not retry.
        log.warning("broker unreachable; the janitor will enqueue the job", extra={"job_id": str(job_id)})
    return _job_response(job_id, status=201)


def _load(job_id: str) -> tuple[Job, int, list[dict[str, Any]]]:
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
        failed = [
            {"idx": idx, "start": start, "end": end, "errors": errors}
            for idx, start, end, errors in s.execute(
                select(Segment.idx, Segment.start_s, Segment.end_s, Segment.errors)
                .where(Segment.job_id == jid, Segment.errors.is_not(None))
                .order_by(Segment.idx)
            )
        ]
    return job, int(done or 0), failed


def _job_response(job_id: uuid.UUID | str, status: int = 200) -> Response:
    job, done, failed = _load(str(job_id))
    response = jsonify(job_view(job, done, failed))
    response.status_code = status
    if status == 201:
        response.headers["Location"] = f"/v1/jobs/{job.id}"
    return response


@bp.get("/jobs/<job_id>")
@require_key("read")
def get_job(job_id: str):  # type: ignore[no-untyped-def]
    return _job_response(job_id)


@bp.get("/jobs/<job_id>/transcript")
@require_key("read")
def get_transcript(job_id: str):  # type: ignore[no-untyped-def]
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_format", f"format must be one of {', '.join(FORMATS)}")
    job, _, _ = _load(job_id)
    if job.status != "done":
        raise ApiError(409, "not_ready", f"the job is {job.status}; the transcript exists once it is done")
    body = current_app.extensions["hark.storage"].get_bytes(out_key(job.id, fmt))
    return Response(body, status=200, content_type=FORMATS[fmt])
