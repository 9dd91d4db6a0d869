"""OpenAI-compatible speech-to-text: `POST /v1/audio/transcriptions` and `/v1/audio/translations`.

A client written for OpenAI's audio API (the `openai` package, or anything that speaks the same
multipart form) works against Hark by changing its base URL and key. Each request becomes an
ordinary job, with the same upload path, queues, tables and metrics as `POST /v1/jobs`, and the
request is answered when the job is done. A recording longer than `openai_max_duration_s` is not
waited for: the answer is a 413 naming the job, which goes on under `/v1/jobs`. Every error under
the prefix, a wrong method or path and the rate limit's 429 included, uses OpenAI's shape
({"error": {"message", "type", "param", "code"}}), since its clients parse that: the app's error
handlers (web/errors.py) hand them to `openai_error`.

Form fields: `file`, `model` ("whisper-1" = the deployment's default ASR with language detection,
or a Hark ASR engine name), `language`, `prompt`, `response_format` (json, text, srt, vtt,
verbose_json), `temperature` (0 only: Hark decodes greedily), `timestamp_granularities[]`
(segment, word; word adds words to verbose_json), and Hark's extras `diarize` (default true),
`num_speakers` and `hotwords` (comma-separated).

A waiting request holds one of its web process's threads until its job is done, so at most
`openai_max_waiting` wait at once per process (`waiting_slot`): a burst of them cannot take the
threads that job polls, uploads and health checks need. One more is refused with a 503 before its
upload is read.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hark.db import session_scope
from hark.exports import render
from hark.models import Job
from hark.status import JobStatus
from hark.storage import out_key, raw_key
from web.auth import principal, require_key
from web.context import app_settings, app_storage
from web.errors import OPENAI_PREFIX, ApiError, drain_body
from web.jobs import parse_options, stream_upload, uploaded_job
from web.openapi import operation
from web.ratelimit import limit_job_creation
from web.schemas import JobOptions
from web.submit import enqueue_prepare, existing_job, parse_flag

bp = Blueprint("openai_audio", __name__, url_prefix=OPENAI_PREFIX)

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
DEFAULT_MODEL = "whisper-1"
POLL_S = 0.25
# Statuses that are the server's fault (OpenAI's "server_error"); the rest are the client's.
SERVER_STATUSES = (500, 502, 503, 504)
# The Retry-After of a request refused because the process's waiting slots are taken: short, as a
# slot frees whenever any waiting job finishes (OpenAI's clients honour it when they retry).
BUSY_RETRY_S = 10
# The app's slots for waiting requests (app.extensions key).
SLOTS = "hark.openai_waiting"

FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "model": {"type": "string", "description": '"whisper-1" (the default ASR) or a Hark ASR engine name'},
        "language": {"type": "string", "description": "ISO 639 code (transcriptions only); default: detected"},
        "prompt": {"type": "string"},
        "response_format": {"type": "string", "enum": list(FORMATS)},
        "temperature": {"type": "number", "enum": [0]},
        "timestamp_granularities[]": {"type": "array", "items": {"type": "string", "enum": ["segment", "word"]}},
        "diarize": {"type": "boolean", "description": "Hark: label speakers (default true)"},
        "num_speakers": {"type": "integer", "minimum": 1, "maximum": 100},
        "hotwords": {"type": "string", "description": "Hark: comma-separated terms (names, jargon)"},
    },
}
FORM_BODY = {"required": True, "content": {"multipart/form-data": {"schema": FORM_SCHEMA}}}
RESPONSES: dict[int, str | None] = {
    200: "TranscriptionVerbose",
    400: "OpenAIError",
    401: "OpenAIError",
    403: "OpenAIError",
    404: "OpenAIError",
    413: "OpenAIError",
    415: "OpenAIError",
    429: "OpenAIError",
    503: "OpenAIError",
    504: "OpenAIError",
}


class OpenAIError(ApiError):
    """An ApiError that names the form field at fault (OpenAI's `param`) and may carry a job link."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None, job: str | None = None):
        super().__init__(status, code, message)
        self.param, self.job = param, job


class Busy(OpenAIError):
    """The 503 of a process whose waiting slots are all taken (`waiting_slot`), with Retry-After."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "server_busy",
            f"this server is already waiting on {app_settings().openai_max_waiting} recordings; retry in "
            f"{BUSY_RETRY_S} s, or submit long or many recordings to /v1/jobs and follow them there",
        )
        self.retry_after = BUSY_RETRY_S


def openai_error(exc: ApiError) -> Response:
    """`exc` in OpenAI's shape, for every request under the prefix (called by web/errors.py)."""
    drain_body()
    kind = "server_error" if exc.status in SERVER_STATUSES else "invalid_request_error"
    if exc.status in (401, 403):
        kind = "authentication_error" if exc.status == 401 else "permission_error"
    elif exc.status == 429:
        kind = "rate_limit_error"
    body: dict[str, Any] = {
        "message": exc.message,
        "type": kind,
        "param": getattr(exc, "param", None),
        "code": exc.code,
    }
    job = getattr(exc, "job", None)
    if job:
        body["job"] = job
    response = jsonify({"error": body})
    response.status_code = exc.status
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.record_once
def _create_slots(state: BlueprintSetupState) -> None:
    """Slots per app, so per web process (gunicorn creates the app in each); None: unbounded."""
    limit = state.app.extensions["hark.settings"].openai_max_waiting
    state.app.extensions[SLOTS] = threading.BoundedSemaphore(limit) if limit > 0 else None


def waiting_slot(view: Callable[..., Any]) -> Callable[..., Any]:
    """Run `view` holding one of the process's waiting slots, released however the view ends.
    Without a free slot the request is refused at once, before its body is read or a job created:
    acquiring never blocks, since a thread blocked here would be the very thread the bound saves.
    Goes under the key check (a keyless flood takes no slot) and above the job-creation limit (a
    refused request costs the key nothing in its window)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        slots: threading.BoundedSemaphore | None = current_app.extensions[SLOTS]
        if slots is None:
            return view(*args, **kwargs)
        if not slots.acquire(blocking=False):
            raise Busy()
        try:
            return view(*args, **kwargs)
        finally:
            slots.release()

    return wrapper


def _job_options(form: Any, task: str) -> tuple[dict[str, Any], str, bool]:
    """The job options, response format and whether words are wanted, from OpenAI's form fields."""
    fmt = form.get("response_format") or "json"
    if fmt not in FORMATS:
        raise OpenAIError(
            400, "invalid_value", f"response_format must be one of {', '.join(FORMATS)}", "response_format"
        )
    temperature = form.get("temperature")
    if temperature not in (None, ""):
        try:
            value = float(temperature)
        except ValueError:
            value = math.nan
        if value != 0:
            raise OpenAIError(
                400, "invalid_value", "temperature: Hark decodes greedily; only 0 is accepted", "temperature"
            )
    granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
    if set(granularities) - {"segment", "word"}:
        raise OpenAIError(
            400, "invalid_value", "timestamp_granularities[] takes segment and word", "timestamp_granularities[]"
        )
    if granularities and fmt != "verbose_json":
        raise OpenAIError(
            400, "invalid_value", "timestamp_granularities[] needs response_format verbose_json", "response_format"
        )
    raw: dict[str, Any] = {}
    model = form.get("model") or DEFAULT_MODEL
    if model != DEFAULT_MODEL:
        raw["engines"] = {"asr": model}
    if task == "translate":
        raw["task"] = "translate"
        if form.get("language"):
            raise OpenAIError(400, "invalid_value", "language is not a field of translations", "language")
    for name in ("language", "prompt", "num_speakers", "hotwords"):
        if form.get(name) not in (None, ""):
            raw[name] = form[name]
    if form.get("diarize") not in (None, "") and not parse_flag(form["diarize"]):
        raw["engines"] = {**raw.get("engines", {}), "embed": "none"}
    try:
        options = parse_options(raw)
    except ApiError as exc:
        param = next((f for f in ("model", "language", "prompt", "hotwords", "num_speakers") if f in exc.message), None)
        if exc.message.startswith("engines.asr"):
            param = "model"
        raise OpenAIError(exc.status, exc.code, exc.message.replace("engines.asr", "model"), param) from None
    return options, fmt, "word" in granularities


def _submit(task: str) -> ResponseReturnValue:
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise OpenAIError(
            415, "unsupported_media_type", "send the recording as multipart/form-data with a 'file' field"
        )
    job_id = uuid.uuid4()
    name, writer, _, (options, fmt, words) = stream_upload(job_id, lambda form: _job_options(form, task))
    settings = app_settings()
    sha256 = writer.sha256.hexdigest()
    with session_scope(settings.database_url) as s:
        # The same recording with the same options is the same job: asking again (another
        # response_format, a retried request) waits for or reads that one instead of redoing it.
        earlier = existing_job(s, principal().tenant_id, sha256)
        stored = s.scalar(select(Job.options).where(Job.id == earlier)) if earlier else None
        # Workers add keys of their own (source_codec, detected_language): compare the job options.
        same = stored is not None and {k: v for k, v in stored.items() if k in JobOptions.model_fields} == options
        if not same:
            # Someone is waiting for the answer: the interactive queue.
            s.add(uploaded_job(job_id, name, writer, options, priority=0))
    if same and earlier is not None:
        app_storage().delete_prefix(raw_key(job_id, ""))
        job_id = earlier
    else:
        enqueue_prepare(job_id, 0)
    doc = _wait_for(job_id)
    return _answer(doc, fmt, words, task)


def _wait_for(job_id: uuid.UUID) -> dict[str, Any]:
    """The finished job's JSON document; 413 as soon as the recording turns out too long, an
    OpenAI-shaped error when the job fails, 504 when it is not done in time."""
    settings = app_settings()
    link = f"/v1/jobs/{job_id}"
    deadline = time.monotonic() + settings.openai_wait_s
    while True:
        with session_scope(settings.database_url) as s:
            row = s.execute(
                select(Job.status, Job.duration_s, Job.declared_duration_s, Job.error_code, Job.error_message).where(
                    Job.id == job_id
                )
            ).one()
        length = row.duration_s or row.declared_duration_s
        if length and length > settings.openai_max_duration_s and row.status != JobStatus.DONE:
            raise OpenAIError(
                413,
                "recording_too_long",
                f"the recording is {length / 60:.0f} min, longer than the "
                f"{settings.openai_max_duration_s / 60:.0f} min this route waits for; the job goes on: "
                f"follow it at {link} (or submit long recordings to /v1/jobs)",
                "file",
                link,
            )
        if row.status == JobStatus.DONE:
            return json.loads(app_storage().get_bytes(out_key(job_id, "json")))
        if row.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            code = row.error_code or str(row.status)
            raise OpenAIError(400, code, f"the job {row.status}: {row.error_message or code}", "file", link)
        if time.monotonic() > deadline:
            raise OpenAIError(504, "timeout", f"the job is not done yet; follow it at {link}", None, link)
        time.sleep(POLL_S)


def _answer(doc: dict[str, Any], fmt: str, words: bool, task: str) -> ResponseReturnValue:
    text = " ".join(u["text"] for u in doc["utterances"] if u["text"]).strip()
    if fmt == "text":
        return Response(text + "\n", content_type="text/plain; charset=utf-8")
    if fmt in ("srt", "vtt"):
        return Response(render(doc, fmt), content_type="text/plain; charset=utf-8")
    if fmt == "json":
        return jsonify({"text": text})
    languages = doc.get("languages") or []
    verbose: dict[str, Any] = {
        "task": task,
        # ISO codes throughout (OpenAI writes language names); a translation's text is English.
        "language": "en" if task == "translate" else (languages[0] if languages else None),
        "duration": doc.get("duration_s"),
        "text": text,
        "segments": [
            {
                "id": n,
                "seek": 0,
                "start": u["start"],
                "end": u["end"],
                "text": u["text"],
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": _avg_logprob(u.get("words") or []),
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
                "speaker": u["speaker"],
                "language": u.get("language"),
            }
            for n, u in enumerate(doc["utterances"])
        ],
    }
    if words:
        verbose["words"] = [
            {
                "word": w["word"].strip(),
                "start": w["start"],
                "end": w["end"],
                "probability": w.get("p"),
                "speaker": u["speaker"],
            }
            for u in doc["utterances"]
            for w in u.get("words") or []
        ]
    return jsonify(verbose)


def _avg_logprob(words: list[dict[str, Any]]) -> float:
    """Mean log probability of the words (0.0 when the engine gives none)."""
    probs = [w["p"] for w in words if w.get("p")]
    return round(sum(math.log(p) for p in probs) / len(probs), 4) if probs else 0.0


@bp.post("/transcriptions")
@operation(
    "Transcribe a recording (OpenAI-compatible); answers when the job is done", responses=RESPONSES, body=FORM_BODY
)
@require_key("submit")
@waiting_slot
@limit_job_creation
def transcriptions() -> ResponseReturnValue:
    return _submit("transcribe")


@bp.post("/translations")
@operation(
    "Translate a recording into English text (OpenAI-compatible); answers when the job is done",
    responses=RESPONSES,
    body=FORM_BODY,
)
@require_key("submit")
@waiting_slot
@limit_job_creation
def translations() -> ResponseReturnValue:
    return _submit("translate")
