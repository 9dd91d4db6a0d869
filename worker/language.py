"""Which ASR engine and language a job's ASR batch runs with (job option `language`).

`auto` (the default) detects the recording's language once, from its first `DETECT_S` seconds of
speech (the segments in order, whichever batch asks first), with the multilingual Whisper base:
an English recording then stays on the deployment's English model (tiny.en), which costs one
language-detection pass per recording more than before; another language moves the job's ASR to
whisper-base in that language. `multi` detects per segment (meetings that switch language) on
whisper-base. An ISO code is passed as given. A job that names its ASR engine keeps it; the
detected language is still handed to a multilingual Whisper so every batch agrees.

The detected language is kept in the job's options (`detected_language`, like prepare's
`source_codec`), so each batch detects nothing once one has.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from hark.audio import SAMPLE_RATE
from hark.db import session_scope
from hark.models import Job, Segment
from hark.settings import Settings
from worker.engines import engine_class, get_engine
from worker.engines.asr_whisper import WhisperAsr
from worker.engines.base import SegmentAudio

MULTILINGUAL = "whisper-base"
DETECT_S = 30.0
LoadAudio = Callable[[Sequence[Any]], list[SegmentAudio]]


def uses_detector(asr_engine: str) -> bool:
    """True when jobs on this default ASR engine need whisper-base to detect their language (so a
    worker preloads it next to the engine)."""
    cls = engine_class(asr_engine)
    return issubclass(cls, WhisperAsr) and cls.english_only


def detect(cfg: Settings, segments: list[SegmentAudio]) -> str:
    """The language of the first DETECT_S seconds of the given speech, by whisper-base."""
    engine = get_engine(MULTILINGUAL, cfg)
    assert isinstance(engine, WhisperAsr) and engine.pipeline is not None
    audio = np.concatenate([s.samples for s in segments]).astype(np.float32, copy=False)[: int(DETECT_S * SAMPLE_RATE)]
    language, _, _ = engine.pipeline.model.detect_language(audio=audio)
    return str(language)


def recording_language(cfg: Settings, jid: uuid.UUID, load_audio: LoadAudio) -> str:
    """The job's detected language: stored, or detected now from its first speech and stored."""
    with session_scope(cfg.database_url) as s:
        job = s.get(Job, jid)
        known = (job.options or {}).get("detected_language") if job else None
        if known:
            return str(known)
        rows = s.execute(
            select(Segment.id, Segment.idx, Segment.start_s, Segment.end_s, Segment.text, Segment.language)
            .where(Segment.job_id == jid)
            .order_by(Segment.idx)
        ).all()
    first: list[Any] = []
    total = 0.0
    for r in rows:
        if total >= DETECT_S:
            break
        first.append(r)
        total += r.end_s - r.start_s
    language = detect(cfg, load_audio(first)) if first else "en"
    with session_scope(cfg.database_url) as s:
        job = s.get(Job, jid, with_for_update=True)
        if job is not None:
            # Another batch may have stored it meanwhile: the same audio gives the same answer.
            job.options = {**(job.options or {}), "detected_language": language}
    return language


def plan_asr(
    cfg: Settings, jid: uuid.UUID, default: str, options: dict[str, Any], load_audio: LoadAudio
) -> tuple[str, dict[str, Any]]:
    """The ASR engine for one batch of a job, and the options it runs with."""
    language = str(options.get("language") or "auto")
    named = bool((options.get("engines") or {}).get("asr"))
    cls = engine_class(default)
    if not issubclass(cls, WhisperAsr):  # SenseVoice and the others detect by themselves ("auto" in their terms)
        return default, options
    english_only = cls.english_only
    if language == "multi":
        return (default if named or not english_only else MULTILINGUAL), options
    if language == "auto":
        if english_only and named:
            return default, {**options, "language": "en"}
        language = str(options.get("detected_language") or recording_language(cfg, jid, load_audio))
    if english_only and not named and language != "en":
        return MULTILINGUAL, {**options, "language": language}
    return default, {**options, "language": language}
