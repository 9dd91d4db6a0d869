"""Jobs: create by uploading a recording (or naming one in the bucket), poll status and progress,
fetch the transcript."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, has_app_context, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hark.db import session_scope
from hark.exports import FORMATS, CueLimits, render
from hark.models import Job, Segment
from hark.settings import Settings
from hark.status import JobStatus
from hark.storage import MultipartWriter, out_key, raw_key
from web.auth import principal, read_session, require_key
from web.bodies import read_json
from web.context import app_settings, app_storage
from web.errors import ApiError, drain_body
from web.job_requests import UPLOAD_BODY, idempotency_key, job_for_key, parse_callback_url
from web.openapi import header, operation, query
from web.progress import TaskCounts, job_progress, task_counts
from web.ratelimit import limit_job_creation
from web.schemas import JobOptions, first_error
from web.status_read import read_status
from web.submit import enqueue_prepare, existing_job, parse_flag, parse_priority, priority_name
from worker.engines import REGISTRY, engine_names, usable_job_options

bp = Blueprint("jobs", __name__, url_prefix="/v1")

# Form fields / JSON keys that steer the submission rather than the processing.
SUBMIT_FIELDS = ("priority", "force")


def safe_filename(name: str | None) -> str:
    """Keep the original name recognisable in the object key, without path tricks or odd bytes."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return base[:200]


def _check_engine(kind: str, name: str) -> None:
    """A job's engine choice must name a registered engine of that kind ("" or "none" switches
    the kind off): a typo fails here with the choices, not in a worker after decoding."""
    if name.lower() in {"", "none"}:
        return
    entry = REGISTRY.get(name)
    if entry is None or entry.kind != kind:
        what = "unknown engine" if entry is None else f"{entry.kind} engine, not {kind}"
        raise ApiError(
            400,
            "invalid_options",
            f"engines.{kind}: {name!r} is an {what}; choose one of {', '.join(engine_names(kind))}",
        )


def parse_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate job options (web/schemas.py `JobOptions`, the schema the API document publishes);
    unknown keys and bad values are a 400, not a surprise later. Returns only the options given."""
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_options", "options must be a JSON object")
    context = {"max_segment_s": app_settings().max_segment_s} if raw.get("merge_length_s") not in (None, "") else {}
    try:
        options = JobOptions.model_validate(raw, context=context).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise ApiError(400, "invalid_options", first_error(exc)) from None
    for kind, name in (options.get("engines") or {}).items():
        _check_engine(kind, name)
    _check_asr_options(options)
    return options


# Job options an ASR engine must declare (EngineEntry.job_options) for a job to use them.
ASR_ONLY_OPTIONS = ("prompt", "hotwords", "task")


def _check_asr_options(options: dict[str, Any]) -> None:
    """Options the job's ASR engine cannot use are refused here, naming the engine, rather than
    silently ignored by a worker."""
    settings = app_settings() if has_app_context() else Settings()
    name = (options.get("engines") or {}).get("asr") or settings.asr_engine
    entry = REGISTRY.get(name)
    if entry is None or name.lower() in {"", "none"}:
        return
    for option in ASR_ONLY_OPTIONS:
        # Some engines' options depend on the model directory (SeACo-Paraformer's hotwords): the
        # web process has the workers' settings and reads the directory's config, not the model.
        if option in options and option not in usable_job_options(entry, settings):
            raise ApiError(400, "invalid_options", f"{option}: the ASR engine {name!r} cannot use it")
    language = options.get("language")
    explicit = bool((options.get("engines") or {}).get("asr"))
    if entry.english_only and explicit and language not in (None, "auto", "en"):
        raise ApiError(
            400, "invalid_options", f"language: the ASR engine {name!r} is English-only; use whisper-base or 'auto'"
        )


def form_options(form: Any) -> dict[str, Any]:
    """The `options` field of a multipart form: a JSON object, or nothing."""
    if not form.get("options"):
        return {}
    try:
        raw = json.loads(form["options"])
    except json.JSONDecodeError:
        raise ApiError(400, "invalid_options", "options must be a JSON object") from None
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_options", "options must be a JSON object")
    return raw


def job_view(
    job: Job | SimpleNamespace, counts: TaskCounts, failed_segments: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(job.id),
        "status": job.status,
        "stage": job.status,
        "filename": job.filename,
        "bytes": job.bytes,
        "sha256": job.sha256,
        "duration_s": job.duration_s,
        # Audio a damaged recording lost (kept as silence): seconds, and [start, end] stretches.
        "damaged_s": job.damaged_s or 0.0,
        "damaged_ranges": job.damaged_ranges or [],
        "options": {k: v for k, v in (job.options or {}).items() if not k.startswith("source_")},
        "priority": priority_name(job.priority),
        "batch_id": str(job.batch_id) if job.batch_id else None,
        "callback_url": job.callback_url,
        "progress": job_progress(job, counts).as_dict(),
        "timings": job.timings or {},
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.status == JobStatus.DONE:
        view["links"] = {fmt: f"/v1/jobs/{job.id}/transcript?format={fmt}" for fmt in FORMATS}
        # Segments an engine could not process (poison segments) leave the job done but partial.
        view["partial"] = bool(failed_segments)
        view["failed_segments"] = failed_segments or []
    return view


T = TypeVar("T")


def stream_upload(job_id: uuid.UUID, read_form: Callable[[Any], T]) -> tuple[str, MultipartWriter, Any, T]:
    """Stream a multipart request's one `file` field to the job's raw key in S3 as it arrives, and
    read the other fields with `read_form` (which raises ApiError for a bad one). On any error the
    partial upload is aborted. Returns the safe file name, the finished writer, the form and what
    `read_form` returned."""
    storage = app_storage()
    sinks: list[tuple[str, MultipartWriter]] = []

    def sink(filename: str | None, content_type: str | None) -> MultipartWriter:
        if sinks:
            raise ApiError(400, "too_many_files", "upload one recording per job")
        name = safe_filename(filename)
        writer = storage.writer(raw_key(job_id, name), content_type or "application/octet-stream")
        sinks.append((name, writer))
        return writer

    request.upload_sink = sink  # type: ignore[attr-defined]  # app.request_class is StreamingRequest
    try:
        files, form = request.files, request.form
        if "file" not in files or not sinks:
            raise ApiError(400, "missing_file", "the form has no 'file' field")
        name, writer = sinks[0]
        if writer.bytes_written == 0:
            raise ApiError(400, "empty_upload", "the uploaded file is empty")
        read = read_form(form)
        writer.finish()
    except BaseException:
        for _, w in sinks:
            w.abort()
        raise
    return name, writer, form, read


def uploaded_job(
    job_id: uuid.UUID, name: str, writer: MultipartWriter, options: dict[str, Any], priority: int, **extra: Any
) -> Job:
    """The row of a job whose recording `stream_upload` just stored (queued, in the caller's tenant)."""
    return Job(
        id=job_id,
        tenant_id=principal().tenant_id,
        status=JobStatus.QUEUED,
        filename=name,
        source_key=raw_key(job_id, name),
        sha256=writer.sha256.hexdigest(),
        bytes=writer.bytes_written,
        options=options,
        priority=priority,
        **extra,
    )


@bp.post("/jobs")
@operation(
    "Upload a recording and start a job",
    responses={201: "Job", 200: "Job", 413: "Error", 415: "Error", 429: "Error", 503: "Error"},
    body=UPLOAD_BODY,
    headers=(header("Idempotency-Key", "same key and tenant: the same job is returned, no new upload"),),
)
@require_key("submit")
@limit_job_creation
def create_job() -> ResponseReturnValue:
    """Stream a multipart upload (field `file`, optional `options` JSON or plain option fields,
    `priority`, `force`, `callback_url`) to S3, record the job and enqueue its preparation. A JSON
    body naming an object in the tenant's inbox (`{"s3_key": ...}`) creates the job without an
    upload. The same content already submitted by this tenant returns that job (200) unless `force`
    is set; so does a repeated Idempotency-Key, which does not count against the rate limit."""
    idem = idempotency_key()
    existing = job_for_key(idem) if idem else None
    if existing is not None:
        drain_body()
        return job_response(existing)
    if request.is_json:
        from web.uploads import create_job_from_object

        return create_job_from_object(read_json())
    return create_job_from_upload()


def create_job_from_upload(extra_options: dict[str, Any] | None = None) -> ResponseReturnValue:
    """The multipart path of `POST /v1/jobs`; `extra_options` are options the route sets itself
    (a voice enrollment's `enroll`), validated with the form's."""
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the recording as multipart/form-data with a 'file' field")
    idem = idempotency_key()
    settings = app_settings()
    storage = app_storage()
    job_id = uuid.uuid4()

    def read_form(form: Any) -> tuple[dict[str, Any], int, str | None]:
        raw_options = form_options(form)
        raw_options.update({k: form[k] for k in form if k not in ("options", "callback_url", *SUBMIT_FIELDS)})
        raw_options.update(extra_options or {})
        return (
            parse_options(raw_options),
            parse_priority(form.get("priority"), "interactive"),
            parse_callback_url(form.get("callback_url")),
        )

    name, writer, form, (options, priority, callback_url) = stream_upload(job_id, read_form)
    sha256 = writer.sha256.hexdigest()
    force = parse_flag(form.get("force") or request.args.get("force"))
    try:
        with session_scope(settings.database_url) as s:
            duplicate = None if force else existing_job(s, principal().tenant_id, sha256)
            if duplicate is None:
                s.add(
                    uploaded_job(
                        job_id, name, writer, options, priority, callback_url=callback_url, idempotency_key=idem
                    )
                )
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer with its job.
        storage.delete_prefix(raw_key(job_id, ""))
        winner = job_for_key(idem) if idem else None
        if winner is None:
            raise
        return job_response(winner)
    if duplicate is not None:
        storage.delete_prefix(raw_key(job_id, ""))
        return job_response(duplicate, status=200)
    enqueue_prepare(job_id, priority)
    return job_response(job_id, status=201)


def _job_uuid(job_id: uuid.UUID | str) -> uuid.UUID:
    """A job id from a URL; anything that is not a UUID is simply no such job."""
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        raise ApiError(404, "job_not_found", "no such job") from None


def find_job(job_id: str, s: Session | None = None) -> Job:
    """The caller's tenant's job, or 404 (the same answer for another tenant's job). Looked up in
    `s` when the caller already holds a session, so a status read costs one connection checkout."""
    jid = _job_uuid(job_id)
    if s is None:
        with session_scope(app_settings().database_url) as own:
            return find_job(job_id, own)
    job = s.scalar(select(Job).where(Job.id == jid, Job.tenant_id == principal().tenant_id))
    if job is None:
        raise ApiError(404, "job_not_found", "no such job")
    return job


def load_job(job_id: str) -> tuple[Job, TaskCounts]:
    with session_scope(app_settings().database_url) as s:
        job = find_job(job_id, s)
        return job, task_counts(s, job.id)


def failed_segments(s: Session, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """Segments an engine could not process (poison segments), with the reason per kind."""
    rows = s.execute(
        select(Segment.idx, Segment.start_s, Segment.end_s, Segment.errors)
        .where(Segment.job_id == job_id, Segment.errors.is_not(None))
        .order_by(Segment.idx)
    ).all()
    return [{"idx": idx, "start": start, "end": end, "errors": errors} for idx, start, end, errors in rows]


def job_response(job_id: uuid.UUID | str, status: int = 200) -> Response:
    """The job's view as JSON. The job's row, its task counts and whether any segment failed come
    in one prepared statement on a kept connection (web/status_read.py): a poll is one query after the key check."""
    jid = _job_uuid(job_id)
    found = read_status(current_app.extensions["hark.reader"], jid, principal().tenant_id)
    if found is None:
        raise ApiError(404, "job_not_found", "no such job")
    job = found.job
    failed = failed_segments(read_session(), job.id) if found.any_failed and job.status == JobStatus.DONE else None
    response = jsonify(job_view(job, found.counts, failed))
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
def get_job(job_id: str) -> ResponseReturnValue:
    """The body's hash is its ETag, so a poller sending If-None-Match gets a bodiless 304 until
    the status or progress moves."""
    response = job_response(job_id)
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/jobs/<job_id>/transcript")
@operation(
    "The finished job's transcript in one export format",
    responses={200: None, 409: "Error"},
    params=(
        query("format", {"enum": list(FORMATS)}, "export format (default json)"),
        query(
            "max_line_chars", {"type": "integer", "minimum": 10, "maximum": 200}, "srt/vtt: characters per line (42)"
        ),
        query("max_lines", {"type": "integer", "minimum": 1, "maximum": 5}, "srt/vtt: lines per cue (2)"),
        query("max_cue_s", {"type": "number", "minimum": 1, "maximum": 60}, "srt/vtt: seconds per cue (7)"),
    ),
)
@require_key("read")
def get_transcript(job_id: str) -> ResponseReturnValue:
    """The stored export; subtitle limits other than the defaults render the cues anew from the
    job's JSON document."""
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_format", f"format must be one of {', '.join(FORMATS)}")
    limits = cue_limits(request.args)
    job, _ = load_job(job_id)
    if job.status != JobStatus.DONE:
        raise ApiError(409, "not_ready", f"the job is {job.status}; the transcript exists once it is done")
    if limits is not None and fmt in ("srt", "vtt"):
        doc = json.loads(app_storage().get_bytes(out_key(job.id, "json")))
        return Response(render(doc, fmt, limits), status=200, content_type=FORMATS[fmt])
    body = app_storage().get_bytes(out_key(job.id, fmt))
    return Response(body, status=200, content_type=FORMATS[fmt])


def cue_limits(args: Any) -> CueLimits | None:
    """Subtitle limits from query parameters; None when none is given (the stored export fits)."""
    given = {k: args[k] for k in ("max_line_chars", "max_lines", "max_cue_s") if args.get(k) not in (None, "")}
    if not given:
        return None
    try:
        return CueLimits(
            max_line_chars=int(given.get("max_line_chars", CueLimits.max_line_chars)),
            max_lines=int(given.get("max_lines", CueLimits.max_lines)),
            max_cue_s=float(given.get("max_cue_s", CueLimits.max_cue_s)),
        )
    except ValueError as exc:
        message = (
            str(exc) if str(exc).startswith("max_") else "max_line_chars and max_lines are integers, max_cue_s a number"
        )
        raise ApiError(400, "invalid_subtitle_limits", message) from None
