"""A job's original recording for playback: a short-lived presigned GET, so the browser streams (and
seeks in) the audio straight from S3 while the API process never carries the bytes. The URL is issued
only to a key of the job's own tenant."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from web.auth import require_key
from web.context import app_storage
from web.jobs import load_job

bp = Blueprint("media", __name__, url_prefix="/v1")

MEDIA_URL_TTL_S = 900


@bp.get("/jobs/<job_id>/media")
@require_key("read")
def job_media(job_id: str) -> ResponseReturnValue:
    job, _ = load_job(job_id)
    url = app_storage().presigned_get(job.source_key, expires_s=MEDIA_URL_TTL_S)
    return jsonify({"url": url, "expires_in": MEDIA_URL_TTL_S, "filename": job.filename})
