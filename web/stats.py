"""Statistics over finished jobs, read from the same `analytics` views analysts query in SQL, so
the API and SQL cannot disagree."""

from __future__ import annotations

import base64
import json
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


SPEAKERS_LIMIT, SPEAKERS_MAX = 1000, 10_000


def _speaker_cursor() -> tuple[uuid.UUID, str] | None:
    raw = request.args.get("cursor")
    if not raw:
        return None
    try:
        job, speaker = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return uuid.UUID(job), str(speaker)
    except (ValueError, TypeError):
        raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor from an earlier page") from None


def _limit() -> int:
    try:
        limit = int(request.args.get("limit", SPEAKERS_LIMIT))
    except ValueError:
        raise ApiError(400, "invalid_filter", "limit must be an integer") from None
    if not 1 <= limit <= SPEAKERS_MAX:
        raise ApiError(400, "invalid_filter", f"limit must be between 1 and {SPEAKERS_MAX}")
    return limit


@bp.get("/speakers")
@operation(
    "Talk time and share per speaker of finished jobs (one job with job_id), a page at a time",
    responses={200: "SpeakerStats"},
    params=(
        query("job_id", {"type": "string", "format": "uuid"}),
        query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": SPEAKERS_MAX},
            f"rows per page (default {SPEAKERS_LIMIT})",
        ),
        query("cursor", {"type": "string"}, "next_cursor of the previous page"),
    ),
)
@require_key("read")
def speakers() -> ResponseReturnValue:
    """Rows in (job_id, speaker) order, at most `limit` a page; `next_cursor` fetches the next page
    (null on the last), so a tenant with years of meetings never gets one unbounded answer."""
    job_id, cursor, limit = _job_filter(), _speaker_cursor(), _limit()
    where = " AND job_id = :job" if job_id is not None else ""
    if cursor is not None:
        where += " AND (job_id, speaker) > (:cursor_job, :cursor_speaker)"
    rows = _rows(
        "SELECT job_id, speaker, speech_s, turns, share FROM analytics.speaker_talk_time"
        f" WHERE tenant_id = :tenant{where} ORDER BY job_id, speaker LIMIT :limit",
        {
            "job": job_id,
            "limit": limit + 1,
            "cursor_job": cursor[0] if cursor else None,
            "cursor_speaker": cursor[1] if cursor else None,
        },
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(json.dumps([last["job_id"], last["speaker"]]).encode()).decode()
    return jsonify({"rows": rows, "next_cursor": next_cursor.rstrip("=") if next_cursor else None})


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
