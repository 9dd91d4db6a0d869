"""Voices: a tenant's named people, enrolled from a finished job's speaker; who each job speaker
is (matched in reduce, corrected here by hand); and searching the archive by voice.

Every query is bounded by the caller's tenant: another tenant's voice, job or speaker is simply
not found (404). A manual correction is stored as a sample of the voice (so it also teaches the
voice) tied to its job and speaker, which is how a later reduce of the same job keeps it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

import numpy as np
from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hark.db import session_scope
from hark.exports import FORMATS, render, with_people
from hark.models import Job, Speaker, Voice, VoiceSample
from hark.status import JobStatus
from hark.storage import out_key
from hark.voice_search import Hit, SpeakerIndex, has_pgvector, pgvector_search
from web.auth import principal, require_key
from web.context import app_settings, app_storage
from web.errors import ApiError, drain_body
from web.jobs import create_job_from_upload, find_job
from web.openapi import json_body, operation, query
from web.ratelimit import limit_job_creation
from web.schemas import SpeakerCorrection, VoiceEnroll, VoiceRename, VoiceSampleFrom, first_error, ref
from worker.voices import score, threshold_for, unit, voice_matrix

bp = Blueprint("voices", __name__, url_prefix="/v1")
M = TypeVar("M", bound=BaseModel)

MAX_RESULTS = 100


def _body(model: type[M]) -> M:
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(400, "invalid_body", first_error(exc)) from None


def _voice(s: Session, voice_id: str) -> Voice:
    try:
        vid = uuid.UUID(voice_id)
    except ValueError:
        raise ApiError(404, "voice_not_found", "no such voice") from None
    voice = s.scalar(select(Voice).where(Voice.id == vid, Voice.tenant_id == principal().tenant_id))
    if voice is None:
        raise ApiError(404, "voice_not_found", "no such voice")
    return voice


def _speaker(s: Session, job_id: uuid.UUID | str, label: str) -> Speaker:
    """A finished job's speaker with its centroid, in the caller's tenant."""
    job = find_job(str(job_id), s)
    if job.status != JobStatus.DONE:
        raise ApiError(409, "job_not_done", f"the job is {job.status}; its speakers are known once it is done")
    speaker = s.scalar(select(Speaker).where(Speaker.job_id == job.id, Speaker.label == label))
    if speaker is None:
        raise ApiError(404, "speaker_not_found", f"the job has no speaker {label!r}")
    if not speaker.centroid:
        raise ApiError(409, "speaker_without_voice", f"{label} has too little speech to hold a voice vector")
    return speaker


def _view(s: Session, voice: Voice) -> dict[str, Any]:
    dims = s.execute(
        select(func.cardinality(VoiceSample.vector), func.count())
        .where(VoiceSample.voice_id == voice.id)
        .group_by(func.cardinality(VoiceSample.vector))
    ).all()
    return {
        "id": str(voice.id),
        "name": voice.name,
        "samples": sum(n for _, n in dims),
        "dims": sorted(d for d, _ in dims),
        "created_at": voice.created_at.isoformat(),
    }


def _add_sample(s: Session, voice: Voice, speaker: Speaker, source: str) -> None:
    s.add(
        VoiceSample(
            voice_id=voice.id,
            tenant_id=voice.tenant_id,
            source=source,
            job_id=speaker.job_id,
            speaker=speaker.label,
            vector=list(speaker.centroid or []),
        )
    )


@bp.post("/voices")
@operation(
    "Enroll a person from a finished job's speaker (JSON; an enrolled name gains the sample), or from"
    " reference audio (multipart `file`, with ?name=): a job whose main speaker becomes the sample when done",
    responses={201: "Voice", 200: "Voice", 202: "Job", 409: "Error"},
    body={
        "required": True,
        "content": {
            "application/json": {"schema": ref("VoiceEnroll")},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    },
    params=(query("name", {"type": "string"}, "the person, for reference audio"),),
)
@require_key("submit")
@limit_job_creation
def enroll() -> ResponseReturnValue:
    if not request.is_json:
        return _enroll_audio()
    body = _body(VoiceEnroll)
    tenant = principal().tenant_id
    with session_scope(app_settings().database_url) as s:
        speaker = _speaker(s, body.job_id, body.speaker)
        voice = s.scalar(select(Voice).where(Voice.tenant_id == tenant, Voice.name == body.name))
        created = voice is None
        if voice is None:
            voice = Voice(tenant_id=tenant, name=body.name)
            s.add(voice)
            s.flush()
        _add_sample(s, voice, speaker, "speaker")
        s.flush()
        s.refresh(voice)
        return jsonify(_view(s, voice)), 201 if created else 200


def _enroll_audio() -> ResponseReturnValue:
    """Reference audio goes through the whole pipeline as a job of its own (decoding, VAD and the
    deployment's speaker engine, so its vector is comparable with every job's speakers); reduce
    adds its main speaker to the voice (worker/voices.py `enroll_reference`)."""
    name = (request.args.get("name") or "").strip()
    if not name or len(name) > 200:
        drain_body()
        raise ApiError(400, "invalid_body", "give the person's name as ?name= (1 to 200 characters)")
    created = create_job_from_upload({"enroll": name})
    response = current_app.make_response(created)
    if response.status_code == 201:
        response.status_code = 202
    return response


@bp.post("/voices/<voice_id>/samples")
@operation(
    "Add a sample to a voice from a finished job's speaker",
    responses={200: "Voice", 409: "Error"},
    body=json_body("VoiceSampleFrom"),
)
@require_key("submit")
def add_sample(voice_id: str) -> ResponseReturnValue:
    body = _body(VoiceSampleFrom)
    with session_scope(app_settings().database_url) as s:
        voice = _voice(s, voice_id)
        _add_sample(s, voice, _speaker(s, body.job_id, body.speaker), "speaker")
        s.flush()
        return jsonify(_view(s, voice))


@bp.get("/voices")
@operation("The tenant's enrolled voices", responses={200: "VoiceList"})
@require_key("read")
def list_voices() -> ResponseReturnValue:
    with session_scope(app_settings().database_url) as s:
        voices = s.scalars(select(Voice).where(Voice.tenant_id == principal().tenant_id).order_by(Voice.name)).all()
        return jsonify({"voices": [_view(s, v) for v in voices]})


@bp.get("/voices/<voice_id>")
@operation("One enrolled voice", responses={200: "Voice"})
@require_key("read")
def get_voice(voice_id: str) -> ResponseReturnValue:
    with session_scope(app_settings().database_url) as s:
        return jsonify(_view(s, _voice(s, voice_id)))


@bp.patch("/voices/<voice_id>")
@operation("Rename a voice", responses={200: "Voice", 409: "Error"}, body=json_body("VoiceRename"))
@require_key("submit")
def rename_voice(voice_id: str) -> ResponseReturnValue:
    body = _body(VoiceRename)
    name = body.name.strip()
    if not name:
        raise ApiError(400, "invalid_body", "name must not be blank")
    try:
        with session_scope(app_settings().database_url) as s:
            voice = _voice(s, voice_id)
            voice.name = name
            s.flush()
            view = _view(s, voice)
    except IntegrityError:
        raise ApiError(409, "voice_name_taken", f"another voice is already named {name!r}") from None
    return jsonify(view)


@bp.delete("/voices/<voice_id>")
@operation("Delete a voice and every vector of it; speakers it named become anonymous", responses={204: None})
@require_key("admin")
def delete_voice(voice_id: str) -> ResponseReturnValue:
    with session_scope(app_settings().database_url) as s:
        voice = _voice(s, voice_id)
        jobs = set(s.scalars(select(Speaker.job_id).where(Speaker.person_id == voice.id)))
        s.execute(delete(VoiceSample).where(VoiceSample.voice_id == voice.id))
        s.execute(delete(Voice).where(Voice.id == voice.id, Voice.tenant_id == principal().tenant_id))
        s.flush()
        for job_id in jobs:
            _refresh_exports(s, job_id)
    return "", 204


def _speaker_rows(s: Session, job_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = s.execute(
        select(Speaker, Voice.name)
        .outerjoin(Voice, Voice.id == Speaker.person_id)
        .where(Speaker.job_id == job_id)
        .order_by(Speaker.label)
    ).all()
    return [
        {
            "label": sp.label,
            "speech_s": sp.speech_s,
            "turns": sp.turns,
            "person": name,
            "voice_id": str(sp.person_id) if sp.person_id else None,
            "person_score": sp.person_score,
            "person_source": sp.person_source,
        }
        for sp, name in rows
    ]


def _threshold(s: Session, job_id: uuid.UUID) -> float | None:
    dim = s.scalar(select(func.max(func.cardinality(Speaker.centroid))).where(Speaker.job_id == job_id))
    return threshold_for(int(dim), app_settings().voice_threshold) if dim else None


@bp.get("/jobs/<job_id>/speakers")
@operation("A finished job's speakers and who they are", responses={200: "JobSpeakers"})
@require_key("read")
def job_speakers(job_id: str) -> ResponseReturnValue:
    with session_scope(app_settings().database_url) as s:
        job = find_job(job_id, s)
        return jsonify({"speakers": _speaker_rows(s, job.id), "threshold": _threshold(s, job.id)})


def _refresh_exports(s: Session, job_id: uuid.UUID) -> None:
    """Re-render the job's exports with the speakers' current people (reduce wrote them; a
    correction or a deleted voice changes who they name)."""
    storage = app_storage()
    if not storage.exists(out_key(job_id, "json")):
        return
    doc = json.loads(storage.get_bytes(out_key(job_id, "json")))
    current = {
        r["label"]: {k: r[k] for k in ("person", "person_score", "person_source")}
        for r in _speaker_rows(s, job_id)
        if r["person"]
    }
    with_people(doc, current)
    for fmt, content_type in FORMATS.items():
        storage.put_bytes(out_key(job_id, fmt), render(doc, fmt).encode("utf-8"), content_type)


@bp.patch("/jobs/<job_id>/speakers/<label>")
@operation(
    "Say who a job's speaker is (kept over automatic matching, and used as a sample of the voice)",
    responses={200: "JobSpeakers", 409: "Error"},
    body=json_body("SpeakerCorrection"),
)
@require_key("submit")
def correct_speaker(job_id: str, label: str) -> ResponseReturnValue:
    body = _body(SpeakerCorrection)
    tenant = principal().tenant_id
    with session_scope(app_settings().database_url) as s:
        speaker = _speaker(s, job_id, label)
        # Earlier corrections of this speaker are replaced by this one.
        s.execute(
            delete(VoiceSample).where(
                VoiceSample.job_id == speaker.job_id,
                VoiceSample.speaker == label,
                VoiceSample.source == "correction",
            )
        )
        voice: Voice | None = None
        if body.voice_id is not None:
            voice = _voice(s, str(body.voice_id))
        elif body.name is not None:
            name = body.name.strip()
            voice = s.scalar(select(Voice).where(Voice.tenant_id == tenant, Voice.name == name))
            if voice is None:
                voice = Voice(tenant_id=tenant, name=name)
                s.add(voice)
                s.flush()
        if voice is None:
            speaker.person_id, speaker.person_score, speaker.person_source = None, None, "manual"
        else:
            # The person this speaker was said to be cannot also be another speaker of the job.
            s.execute(
                update(Speaker)
                .where(Speaker.job_id == speaker.job_id, Speaker.person_id == voice.id, Speaker.label != label)
                .values(person_id=None, person_score=None, person_source=None)
            )
            ids, matrix = voice_matrix(s, tenant, len(speaker.centroid or []))
            before = score(speaker.centroid or [], matrix[ids.index(voice.id)]) if voice.id in ids else None
            _add_sample(s, voice, speaker, "correction")
            speaker.person_id, speaker.person_source = voice.id, "manual"
            speaker.person_score = before
        s.flush()
        _refresh_exports(s, speaker.job_id)
        return jsonify({"speakers": _speaker_rows(s, speaker.job_id), "threshold": _threshold(s, speaker.job_id)})


def _limit() -> int:
    raw = request.args.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RESULTS:
        raise ApiError(400, "invalid_filter", f"limit must be an integer from 1 to {MAX_RESULTS}")
    return int(raw)


def _search(s: Session, q: np.ndarray, k: int, exclude: uuid.UUID | None) -> tuple[list[Hit], str]:
    tenant = principal().tenant_id
    if "hark.pgvector" not in current_app.extensions:  # the server's extensions, asked once per process
        current_app.extensions["hark.pgvector"] = has_pgvector(s)
    if current_app.extensions["hark.pgvector"]:
        return pgvector_search(s, tenant, q, k, exclude), "pgvector"
    index: SpeakerIndex = current_app.extensions.setdefault("hark.speaker_index", SpeakerIndex())
    return index.search(s, tenant, q, k, exclude), "in-process"


def _hits(s: Session, hits: list[Hit], threshold: float | None, method: str) -> dict[str, Any]:
    jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_({h.job_id for h in hits})))}
    named = {
        (job, label): name
        for job, label, name in s.execute(
            select(Speaker.job_id, Speaker.label, Voice.name)
            .join(Voice, Voice.id == Speaker.person_id)
            .where(Speaker.job_id.in_(list(jobs)))
        )
    }
    return {
        "results": [
            {
                "job_id": str(h.job_id),
                "filename": jobs[h.job_id].filename,
                "created_at": jobs[h.job_id].created_at.isoformat(),
                "speaker": h.label,
                "score": round(h.score, 4),
                "person": named.get((h.job_id, h.label)),
                "above_threshold": threshold is not None and h.score >= threshold,
            }
            for h in hits
            if h.job_id in jobs
        ],
        "threshold": threshold,
        "method": method,
    }


@bp.get("/voices/<voice_id>/meetings")
@operation(
    "The tenant's finished jobs where this voice likely spoke, most similar speaker first",
    responses={200: "VoiceHits"},
    params=(query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS}),),
)
@require_key("read")
def voice_meetings(voice_id: str) -> ResponseReturnValue:
    k = _limit()
    with session_scope(app_settings().database_url) as s:
        voice = _voice(s, voice_id)
        dims = s.scalars(
            select(func.cardinality(VoiceSample.vector)).where(VoiceSample.voice_id == voice.id).distinct()
        ).all()
        if not dims:
            return jsonify({"results": [], "threshold": None, "method": "in-process"})
        # The engine with most samples of this voice; a tenant normally uses one.
        dim = max(dims)
        ids, matrix = voice_matrix(s, voice.tenant_id, dim)
        q = matrix[ids.index(voice.id)]
        hits, method = _search(s, q, k, None)
        return jsonify(_hits(s, hits, threshold_for(dim, app_settings().voice_threshold), method))


@bp.get("/jobs/<job_id>/speakers/<label>/similar")
@operation(
    "Other finished jobs of the tenant with a speaker like this one, most similar first",
    responses={200: "VoiceHits", 409: "Error"},
    params=(query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS}),),
)
@require_key("read")
def similar_speakers(job_id: str, label: str) -> ResponseReturnValue:
    k = _limit()
    with session_scope(app_settings().database_url) as s:
        speaker = _speaker(s, job_id, label)
        q = unit(speaker.centroid or [])
        hits, method = _search(s, q, k, speaker.job_id)
        return jsonify(_hits(s, hits, threshold_for(len(q), app_settings().voice_threshold), method))
