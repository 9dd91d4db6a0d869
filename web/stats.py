"""Statistics over finished jobs, read from the same `analytics` views analysts query in SQL, so
the API and SQL cannot disagree."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from hark.db import session_scope
from web.auth import principal, require_key
from web.context import app_settings
from web.errors import ApiError
from web.openapi import operation, query

bp = Blueprint("stats", __name__, url_prefix="/v1/stats")


def _job_filter() -> uuid.UUID | None:
    raw = request.args.get("job_id")
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(400, "invalid_filter", "job_id must be a job id (UUID)") from None


def _rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with session_scope(app_settings().database_url) as s:
        rows = s.execute(text(sql), {"tenant": principal().tenant_id, **params}).mappings().all()
    return [
        {k: (str(v) if isinstance(v, uuid.UUID) or hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows
    ]


@bp.get("/emotions")
@operation(
    "Emotion seconds: per speaker of one job (job_id), or per day/week over all finished jobs (grain)",
    responses={200: "EmotionStats"},
    params=(
        query("job_id", {"type": "string", "format": "uuid"}),
        query("grain", {"enum": ["day", "week"]}, "used when job_id is absent (default day)"),
    ),
)
@require_key("read")
def emotions() -> ResponseReturnValue:
    job_id = _job_filter()
    if job_id is not None:
        rows = _rows(
            "SELECT job_id, speaker, emotion, emotion_source, seconds, segments, share FROM analytics.speaker_emotions"
            " WHERE tenant_id = :tenant AND job_id = :job ORDER BY speaker, seconds DESC, emotion",
            {"job": job_id},
        )
        return jsonify({"rows": rows})
    grain = request.args.get("grain", "day")
    if grain not in ("day", "week"):
        raise ApiError(400, "invalid_filter", "grain must be 'day' or 'week'")
    rows = _rows(
        "SELECT grain, period_start, emotion, emotion_source, seconds, segments, jobs FROM analytics.emotions_by_period"
        " WHERE tenant_id = :tenant AND grain = :grain ORDER BY period_start, seconds DESC, emotion",
        {"grain": grain},
    )
    return jsonify({"rows": rows})


@bp.get("/speakers")
@operation(
    "Talk time and share per speaker of finished jobs (one job with job_id)",
    responses={200: "SpeakerStats"},
    params=(query("job_id", {"type": "string", "format": "uuid"}),),
)
@require_key("read")
def speakers() -> ResponseReturnValue:
    job_id = _job_filter()
    where = " AND job_id = :job" if job_id is not None else ""
    rows = _rows(
        "SELECT job_id, speaker, speech_s, turns, share FROM analytics.speaker_talk_time"
        f" WHERE tenant_id = :tenant{where} ORDER BY job_id, speaker",
        {"job": job_id},
    )
    return jsonify({"rows": rows})


CONVERSATION_COLUMNS = (
    "interruptions_made, interruptions_suffered, overlap_s, words, words_per_minute, longest_monologue_s,"
    " questions, median_response_gap_s"
)


@bp.get("/conversation")
@operation(
    "Conversation dynamics per speaker of finished jobs (one job with job_id), or per named person"
    " across meetings (by=person): interruptions, overlap, words per minute, longest monologue,"
    " questions, median response gap",
    responses={200: "ConversationStats"},
    params=(
        query("job_id", {"type": "string", "format": "uuid"}),
        query("by", {"enum": ["speaker", "person"]}, "default speaker"),
    ),
)
@require_key("read")
def conversation() -> ResponseReturnValue:
    by = request.args.get("by", "speaker")
    if by not in ("speaker", "person"):
        raise ApiError(400, "invalid_filter", "by must be 'speaker' or 'person'")
    if by == "person":
        rows = _rows(
            f"SELECT person, meetings, {CONVERSATION_COLUMNS} FROM analytics.person_conversation"
            " WHERE tenant_id = :tenant ORDER BY person",
            {},
        )
        return jsonify({"rows": rows})
    job_id = _job_filter()
    where = " AND job_id = :job" if job_id is not None else ""
    rows = _rows(
        f"SELECT job_id, speaker, person, {CONVERSATION_COLUMNS} FROM analytics.conversation"
        f" WHERE tenant_id = :tenant{where} ORDER BY job_created_at DESC, job_id, speaker LIMIT 1000",
        {"job": job_id},
    )
    return jsonify({"rows": rows})
