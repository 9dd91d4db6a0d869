"""Recordings that reach the bucket without passing through the web process.

`POST /v1/uploads` starts a presigned S3 multipart upload: the client PUTs each part straight to
the S3 server and `POST /v1/uploads/<id>/complete` (with the parts' ETags) completes it and queues
the job, which waited in `uploading` meanwhile. A JSON `POST /v1/jobs` with `s3_key` creates a job
for an object the tenant already put in its inbox (`inbox/<tenant>/…`), and only there.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from hark.db import session_scope
from hark.jobstate import advance
from hark.models import Job, Upload
from hark.status import JobStatus
from hark.storage import Storage, in_inbox, inbox_prefix, raw_key
from hark.uploads import part_length, plan_parts
from web.auth import principal, require_key
from web.bodies import json_object
from web.context import app_settings, app_storage
from web.errors import ApiError
from web.jobs import job_response, parse_options, safe_filename
from web.openapi import json_body, operation
from web.ratelimit import limit_upload_creation
from web.submit import enqueue_prepare, existing_job, parse_flag, parse_priority, parse_sha256

bp = Blueprint("uploads", __name__, url_prefix="/v1")


def _options(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("options") or {}
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_options", "options must be a JSON object")
    return parse_options(raw)


@bp.post("/uploads")
@operation(
    "Start a direct upload: presigned S3 part URLs for a large recording",
    responses={201: "Upload", 200: "Job", 413: "Error", 429: "Error"},
    body=json_body("StartUpload"),
)
@require_key("submit")
@limit_upload_creation
def create_upload() -> ResponseReturnValue:
    """`{"filename", "size", "sha256"?, "options"?, "priority"?, "force"?}` → the job (status
    `uploading`) and a presigned multipart upload. With a `sha256` this tenant already submitted,
    answers 200 with the existing job and no upload (unless `force`)."""
    body = json_object()
    settings = app_settings()
    try:
        size = int(body["size"])
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "invalid_size", "size (bytes) is required") from None
    if size <= 0:
        raise ApiError(400, "empty_upload", "the file to upload is empty")
    if size > settings.max_upload_bytes:
        raise ApiError(413, "too_large", f"larger than the limit of {settings.max_upload_bytes} bytes")
    if not isinstance(body.get("filename"), str) or not body["filename"].strip():
        raise ApiError(400, "invalid_filename", "filename (a string) is required")
    name = safe_filename(body["filename"])
    options = _options(body)
    priority = parse_priority(body.get("priority"), "interactive")
    sha256 = parse_sha256(body.get("sha256"))
    plan = plan_parts(size, settings.upload_part_bytes)
    tenant_id = principal().tenant_id
    job_id, upload_id = uuid.uuid4(), uuid.uuid4()
    key = raw_key(job_id, name)
    storage = app_storage()
    with session_scope(settings.database_url) as s:
        duplicate = None if parse_flag(body.get("force")) else existing_job(s, tenant_id, sha256)
        if duplicate is None:
            s3_upload_id = storage.create_multipart(key)
            expires_at = datetime.now(UTC) + timedelta(seconds=settings.upload_url_expiry_s)
            s.add(
                Job(
                    id=job_id,
                    tenant_id=tenant_id,
                    status=JobStatus.UPLOADING,
                    filename=name,
                    source_key=key,
                    sha256=sha256,
                    bytes=size,
                    options=options,
                    priority=priority,
                )
            )
            s.flush()
            s.add(
                Upload(
                    id=upload_id,
                    tenant_id=tenant_id,
                    job_id=job_id,
                    key=key,
                    s3_upload_id=s3_upload_id,
                    part_bytes=plan.part_bytes,
                    parts=plan.parts,
                    expires_at=expires_at,
                )
            )
    if duplicate is not None:
        return job_response(duplicate, status=200)
    urls = _part_urls(storage, key, s3_upload_id, size, plan.part_bytes, plan.parts)
    response = jsonify(
        {
            "upload_id": str(upload_id),
            "job_id": str(job_id),
            "part_size": plan.part_bytes,
            "parts": urls,
            "expires_at": expires_at.isoformat(),
            "complete_url": f"/v1/uploads/{upload_id}/complete",
        }
    )
    response.status_code = 201
    return response


def _part_urls(storage: Storage, key: str, s3_id: str, size: int, part_bytes: int, parts: int) -> list[dict[str, Any]]:
    """Presigned PUT URLs, each signed for its part's exact length (the S3 server refuses others)."""
    expiry = app_settings().upload_url_expiry_s
    return [
        {
            "part_number": n,
            "size": part_length(size, part_bytes, n),
            "url": storage.presigned_part(key, s3_id, n, part_length(size, part_bytes, n), expiry),
        }
        for n in range(1, parts + 1)
    ]


def _tenant_upload(s: Session, upload_id: str, lock: bool = False) -> Upload:
    """The caller's tenant's upload (row-locked when `lock`), or 404 — also for another tenant's."""
    try:
        uid = uuid.UUID(upload_id)
    except ValueError:
        raise ApiError(404, "upload_not_found", "no such upload") from None
    stmt = select(Upload).where(Upload.id == uid, Upload.tenant_id == principal().tenant_id)
    upload = s.scalar(stmt.with_for_update() if lock else stmt)
    if upload is None:
        raise ApiError(404, "upload_not_found", "no such upload")
    return upload


@bp.get("/uploads/<upload_id>")
@operation("Where a direct upload stands, with fresh part URLs to resume it", responses={200: "UploadStatus"})
@require_key("submit")
def upload_status(upload_id: str) -> ResponseReturnValue:
    """Where an upload stands, for a client resuming it: the parts the S3 server already holds
    (with their ETags) and fresh presigned URLs for every part, so an interrupted multi-gigabyte
    upload continues instead of starting over."""
    settings = app_settings()
    with session_scope(settings.database_url) as s:
        upload = _tenant_upload(s, upload_id)
        key, s3_id, status, job_id = upload.key, upload.s3_upload_id, upload.status, upload.job_id
        part_bytes, parts_total, expires_at = upload.part_bytes, upload.parts, upload.expires_at
        size = s.scalar(select(Job.bytes).where(Job.id == job_id)) or 0
    body: dict[str, Any] = {
        "upload_id": upload_id,
        "job_id": str(job_id),
        "status": status,
        "part_size": part_bytes,
        "parts_total": parts_total,
        "expires_at": expires_at.isoformat(),
    }
    if status == "open":
        storage = app_storage()
        body["uploaded"] = storage.uploaded_parts(key, s3_id)
        body["parts"] = _part_urls(storage, key, s3_id, size, part_bytes, parts_total)
    return jsonify(body)


def _parse_etags(body: dict[str, Any], parts: int) -> list[tuple[int, str]]:
    raw = body.get("parts")
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "invalid_parts", "parts must list {part_number, etag} for every uploaded part")
    etags: list[tuple[int, str]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("etag"), str):
            raise ApiError(400, "invalid_parts", "each part needs part_number and etag")
        try:
            etags.append((int(item["part_number"]), item["etag"]))
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "invalid_parts", "part_number must be an integer") from None
    numbers = [n for n, _ in etags]
    if numbers != list(range(1, len(numbers) + 1)) or len(numbers) > parts:
        raise ApiError(400, "invalid_parts", f"part numbers must run 1, 2, … without gaps (at most {parts})")
    return etags


def _check_part_sizes(storage: Storage, upload: Upload, declared: int, parts: int) -> None:
    """Before completing: every part the S3 server holds must be exactly the length its URL was
    signed for, and together the declared size. The signed length already stops a larger PUT at
    the S3 server; this check holds even against a server that does not enforce it."""
    held = {p["part_number"]: p["size"] for p in storage.uploaded_parts(upload.key, upload.s3_upload_id)}
    for n in range(1, parts + 1):
        expected = part_length(declared, upload.part_bytes, n)
        if n in held and held[n] != expected:
            raise ApiError(400, "part_size_mismatch", f"part {n} holds {held[n]} bytes; the upload declared {expected}")
    if sum(held.get(n, 0) for n in range(1, parts + 1)) != declared:
        raise ApiError(400, "size_mismatch", f"the parts do not add up to the declared size of {declared} bytes")


@bp.post("/uploads/<upload_id>/complete")
@operation(
    "Complete a direct upload with its part ETags; queues the job",
    responses={201: "Job", 409: "Error"},
    body=json_body("CompleteUpload"),
)
@require_key("submit")
def complete_upload(upload_id: str) -> ResponseReturnValue:
    """`{"parts": [{"part_number", "etag"}, …]}` → completes the object, queues the job (201)."""
    settings = app_settings()
    body = json_object()
    with session_scope(settings.database_url) as s:
        upload = _tenant_upload(s, upload_id, lock=True)
        if upload.status != "open":
            raise ApiError(409, "upload_closed", f"the upload is already {upload.status}")
        etags = _parse_etags(body, upload.parts)
        storage = app_storage()
        job = s.get(Job, upload.job_id)
        assert job is not None
        _check_part_sizes(storage, upload, job.bytes or 0, len(etags))
        try:
            storage.complete_multipart(upload.key, upload.s3_upload_id, etags)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ApiError(400, "invalid_parts", f"the S3 server refused to complete the upload ({code})") from None
        size = storage.size(upload.key)
        upload.status = "completed"
        advance(s, upload.job_id, JobStatus.QUEUED, bytes=size)
        job_id, priority = upload.job_id, job.priority
    enqueue_prepare(job_id, priority)
    return job_response(job_id, status=201)


def create_job_from_object(body: Any) -> Response:
    """A job for an object already in the tenant's inbox: `{"s3_key", "sha256"?, "options"?,
    "priority"?, "force"?}`. Dedupe applies when the client states the content's sha256 (the web
    process does not read the object to compute it)."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    tenant_id = principal().tenant_id
    key = body.get("s3_key")
    if not isinstance(key, str) or not in_inbox(tenant_id, key):
        raise ApiError(
            403, "key_not_allowed", f"s3_key must name an object under this tenant's prefix {inbox_prefix(tenant_id)}"
        )
    storage = app_storage()
    if not storage.exists(key):
        raise ApiError(404, "object_not_found", "no object with that key")
    size = storage.size(key)
    if size == 0:
        raise ApiError(400, "empty_upload", "the object is empty")
    options = _options(body)
    priority = parse_priority(body.get("priority"), "interactive")
    sha256 = parse_sha256(body.get("sha256"))
    job_id = uuid.uuid4()
    with session_scope(app_settings().database_url) as s:
        duplicate = None if parse_flag(body.get("force")) else existing_job(s, tenant_id, sha256)
        if duplicate is None:
            s.add(
                Job(
                    id=job_id,
                    tenant_id=tenant_id,
                    status=JobStatus.QUEUED,
                    filename=key.rsplit("/", 1)[-1][:500],
                    source_key=key,
                    sha256=sha256,
                    bytes=size,
                    options=options,
                    priority=priority,
                )
            )
    if duplicate is not None:
        return job_response(duplicate, status=200)
    enqueue_prepare(job_id, priority)
    return job_response(job_id, status=201)
