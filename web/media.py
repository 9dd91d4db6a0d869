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
# The type the bucket serves a recording as comes from this table (by extension), never from
# what the uploader claimed: an "audio" object must not be served as a page.
AUDIO_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "webm": "audio/webm",
}


def audio_type(filename: str) -> str:
    return AUDIO_TYPES.get(filename.rsplit(".", 1)[-1].lower() if "." in filename else "", "application/octet-stream")


@bp.get("/jobs/<job_id>/media")
@require_key("read")
def job_media(job_id: str) -> ResponseReturnValue:
    job, _ = load_job(job_id)
    url = app_storage().presigned_get(job.source_key, job.filename, audio_type(job.filename), expires_s=MEDIA_URL_TTL_S)
    return jsonify({"url": url, "expires_in": MEDIA_URL_TTL_S, "filename": job.filename})
