"""Which ASR engine and language a job's ASR batch runs with (job option `language`).

`auto` (the default) detects the recording's language once, from its first `DETECT_S` seconds of
speech, with the multilingual Whisper base: an English recording then stays on the deployment's
English model (tiny.en); another language moves the job's ASR to whisper-base in that language.
`multi` detects per segment (meetings that switch language) on whisper-base. An ISO code is passed
as given. A job that names its ASR engine keeps it; the detected language is still handed to a
multilingual Whisper so every batch agrees.

Detection looks at the first `QUICK_S` seconds of speech first, unpadded, which costs about a
fifth of Whisper's padded 30 s window; only when that look is not sure (`QUICK_P`) does it read
the whole window, so a recording costs little more than the English model alone.

prepare holds a job's ASR batches back until the rows of its first `DETECT_S` seconds of speech
exist (worker/tasks/prepare.py), so the first batch to ask detects from the same speech however
early it runs. The result is kept in the job's options (`detected_language`, like prepare's
`source_codec`); an advisory lock makes batches asking at once in several processes wait for one
detection instead of each running their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select, text

from hark.audio import SAMPLE_RATE
from hark.db import session_scope
from hark.models import Job, Segment
from hark.settings import Settings
from worker.engines import engine_class, get_engine
from worker.engines.asr_whisper import WhisperAsr
from worker.engines.base import SegmentAudio

MULTILINGUAL = "whisper-base"
DETECT_S = 30.0
QUICK_S = 10.0
# The quick look's answer is taken at this probability: well above any wrong quick answer on real
# speech, and reached by most right ones (bench/languages.py).
QUICK_P = 0.9
FRAMES_PER_S = 100  # Whisper's log-mel frames (10 ms hop)
LoadAudio = Callable[[Sequence[Any]], list[SegmentAudio]]


def uses_detector(asr_engine: str) -> bool:
    """True when jobs on this default ASR engine need whisper-base to detect their language (so a
    worker preloads it next to the engine)."""
    cls = engine_class(asr_engine)
    return issubclass(cls, WhisperAsr) and cls.english_only


def detects_language(asr_engine: str, options: dict[str, Any]) -> bool:
    """True when a job's ASR batches will ask for the recording's language (plan_asr): `auto` on
    a Whisper engine, unless the job named an English-only one."""
    if str(options.get("language") or "auto") != "auto":
        return False
    cls = engine_class(asr_engine)
    named = bool((options.get("engines") or {}).get("asr"))
    return issubclass(cls, WhisperAsr) and not (cls.english_only and named)


def detect(cfg: Settings, segments: list[SegmentAudio]) -> str:
    """The language of the given speech (its first DETECT_S seconds), by whisper-base: the first
    QUICK_S seconds unpadded when that is sure, else the whole window padded as Whisper expects."""
    engine = get_engine(MULTILINGUAL, cfg)
    assert isinstance(engine, WhisperAsr) and engine.pipeline is not None
    model = engine.pipeline.model
    audio = np.concatenate([s.samples for s in segments]).astype(np.float32, copy=False)[: int(DETECT_S * SAMPLE_RATE)]
    features = model.feature_extractor(audio)

    def most_likely(window: np.ndarray) -> tuple[str, float]:
        token, p = model.model.detect_language(model.encode(window))[0][0]
        return token[2:-2], p  # "<|de|>" -> "de"

    language, p = most_likely(features[:, : int(QUICK_S * FRAMES_PER_S)])
    if p < QUICK_P:
        frames = int(DETECT_S * FRAMES_PER_S)
        window = features[:, :frames]
        language, p = most_likely(np.pad(window, ((0, 0), (0, frames - window.shape[1]))))
    return language


def recording_language(cfg: Settings, jid: uuid.UUID, load_audio: LoadAudio) -> str:
    """The job's detected language: stored, or detected now from its first speech and stored."""
    with session_scope(cfg.database_url) as s:
        # Held until this transaction ends: a batch asking meanwhile waits here, then reads it.
        s.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"language:{jid}", 0))))
        # Not locked for update: tasks storing results beside it must not wait for the detection.
        known = s.scalar(select(Job.options["detected_language"].astext).where(Job.id == jid))
        if known:
            return known
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
        # Merged in place: prepare may be writing the job's options meanwhile (source_codec).
        s.execute(
            text(
                "UPDATE jobs SET options = coalesce(options, '{}'::jsonb) "
                "|| jsonb_build_object('detected_language', CAST(:language AS text)) WHERE id = :id"
            ),
            {"language": language, "id": jid},
        )
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
        if not detects_language(default, options):  # an English-only engine the job named
            return default, {**options, "language": "en"}
        language = str(options.get("detected_language") or recording_language(cfg, jid, load_audio))
    if english_only and not named and language != "en":
        return MULTILINGUAL, {**options, "language": language}
    return default, {**options, "language": language}
