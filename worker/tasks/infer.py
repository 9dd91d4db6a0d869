"""infer(job, batch, kind): run one engine over one batch of segments and store its results.

The task fetches exactly its batch's bytes from the canonical PCM (hark/pcm_store.py) with ranged GETs,
unless its engine reads only text (`reads_audio = False`).
Results are written keyed by segment and kind (columns of the segment row for text and emotion,
rows of `embeddings` for speaker vectors), replacing any earlier attempt, and the batch is marked
done in the same transaction; so a redelivered task changes nothing. Tasks run while prepare still
decodes the rest of the recording (it sends each batch once final). The task that completes the
last batch of a job prepare has finished moves it to reducing and enqueues reduce (prepare does
so itself when every batch was done before it finished); the task that stores the last
speaker-embedding batch while other batches still run enqueues diarize, so the clustering is done
by the time reduce needs it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from hark.audio import pcm_to_float, seconds_to_byte
from hark.db import session_scope
from hark.jobstate import advance
from hark.models import Embedding, Job, JobTask, Segment
from hark.pcm_store import read_pcm
from hark.queues import DIARIZE, INFER, REDUCE
from hark.settings import Settings
from hark.status import JobStatus
from hark.storage import Storage
from worker import faults
from worker.celery_app import app
from worker.engines import get_engine
from worker.engines.base import SegmentAudio, SegmentResult, run_engine
from worker.language import plan_asr
from worker.metrics import observe_engine
from worker.tasks.common import JobStageTask, engine_name, planned_kinds, settings
from worker.timing import Clock
from worker.window_rows import copy_windows

log = logging.getLogger("hark.infer")
# Model work runs while prepare still decodes the rest (batches are sent as they become final)
# and after it; a job in any other status has nothing to gain from it.
LIVE = (JobStatus.PREPARING, JobStatus.INFERRING)


@app.task(name=INFER, bind=True, base=JobStageTask, failure_code="engine_error")
def infer(self: JobStageTask, job_id: str, batch_idx: int, kind: str) -> None:
    cfg = settings()
    jid = uuid.UUID(job_id)
    clock = Clock()
    started, started_cpu = time.monotonic(), time.process_time()
    with clock.part(f"{kind}_db"), session_scope(cfg.database_url) as s:
        job = s.get(Job, jid)
        task = s.get(JobTask, (jid, batch_idx, kind))
        if job is None or task is None or job.status not in LIVE or task.done_at is not None:
            return
        if not self.take_lease(s, jid, f"infer:{batch_idx}:{kind}"):
            return  # a copy sent again by the janitor runs it (or this is the stale copy of a dead worker)
        options = dict(job.options or {})
        attempt = task.attempts + 1
        rows = s.execute(
            select(Segment.id, Segment.idx, Segment.start_s, Segment.end_s, Segment.text, Segment.language)
            .where(Segment.job_id == jid, Segment.idx.between(task.first_idx, task.last_idx))
            .order_by(Segment.idx)
        ).all()
        s.execute(
            update(JobTask)
            .where(JobTask.job_id == jid, JobTask.batch_idx == batch_idx, JobTask.kind == kind)
            .values(attempts=JobTask.attempts + 1, started_at=func.now())
        )
    self.keep_lease(jid, f"infer:{batch_idx}:{kind}")
    extra = {"job_id": job_id, "batch": batch_idx, "kind": kind, "segments": f"{task.first_idx}-{task.last_idx}"}
    name = engine_name(kind, options)
    if kind == "asr":
        with clock.part("asr_language", cpu=True):
            try:  # may read the job's first speech from S3 (language detection)
                name, options = plan_asr(cfg, jid, name, options, lambda rows: _load_batch(Storage(cfg), jid, rows))
            except Exception:  # as a failed fetch below: no engine saw the batch
                _uncount_attempt(cfg, jid, batch_idx, kind)
                raise
    with clock.part(f"{kind}_load"):
        engine = get_engine(name, cfg)
    if engine.reads_audio:
        with clock.part(f"{kind}_fetch"):
            try:
                batch = _load_batch(Storage(cfg), jid, rows)
            except Exception:  # only a head start: reduce clusters when it was not sent
                _uncount_attempt(cfg, jid, batch_idx, kind)
                raise
    else:  # a text-only engine: the batch's audio would be read from S3 for nothing
        batch = [SegmentAudio(r.id, r.idx, r.start_s, r.end_s, NO_SAMPLES, r.text, r.language) for r in rows]
    with clock.part(f"{kind}_model", cpu=True):
        if attempt <= cfg.poison_after_attempts:
            faults.before_run(cfg.fault_injection, kind, batch)
            results = run_engine(engine, batch, options)  # an error here is retried, the whole batch again
        else:
            results = _run_one_by_one(cfg, kind, engine, batch, options)
    observe_engine(name, kind, sum(b.end_s - b.start_s for b in batch), clock.wall[f"{kind}_model"])
    if clock.wall[f"{kind}_load"] < 0.01:  # the engine was already warm: nothing worth a key
        del clock.wall[f"{kind}_load"]
    db_started = time.monotonic()
    with session_scope(cfg.database_url) as s:
        # Lock the job row: completions of one job are serialised, so exactly one task sees the
        # last batch finish.
        job = s.get(Job, jid, with_for_update=True)
        if job is None or job.status not in LIVE:
            return
        ids = [r.id for r in rows]
        if s.scalar(select(func.count()).select_from(Segment).where(Segment.id.in_(ids))) != len(ids):
            # A redelivered prepare replaced the segments this task read: the batch under this
            # number is new work, sent again by that prepare; these results belong to nothing.
            log.info("segments replaced; results dropped", extra=extra)
            return
        _store(s, jid, kind, results, asr_emotion="emotion" not in planned_kinds(options))
        s.execute(
            update(JobTask)
            .where(JobTask.job_id == jid, JobTask.batch_idx == batch_idx, JobTask.kind == kind)
            .values(done_at=func.now())
        )
        remaining = s.scalar(
            select(func.count()).select_from(JobTask).where(JobTask.job_id == jid, JobTask.done_at.is_(None))
        )
        embeddings_complete = (
            bool(remaining)
            and kind == "embed"
            and job.status == JobStatus.INFERRING
            and not s.scalar(
                select(func.count())
                .select_from(JobTask)
                .where(JobTask.job_id == jid, JobTask.kind == "embed", JobTask.done_at.is_(None))
            )
        )
        # Everything but this transaction's commit is in the timings.
        clock.add(f"{kind}_db", time.monotonic() - db_started)
        clock.add(kind, time.monotonic() - started, time.process_time() - started_cpu)
        job.timings = clock.merged(job.timings)
        last = remaining == 0 and advance(s, jid, JobStatus.REDUCING)
    compute_s = clock.wall[kind]
    log.info("batch done", extra={**extra, "seconds": round(compute_s, 3)})
    if last:
        app.send_task(REDUCE, args=[job_id])
    elif embeddings_complete:
        try:
            app.send_task(DIARIZE, args=[job_id])
        except Exception:
            log.warning("diarize not sent; reduce will cluster", extra=extra, exc_info=True)


def _uncount_attempt(cfg: Settings, jid: uuid.UUID, batch_idx: int, kind: str) -> None:
    """The batch's audio could not be fetched (S3 away): the engine never saw it, so this attempt
    must not bring a healthy batch closer to the poison path, which runs segments one by one and
    would change its results. Best effort: with the database away too, the attempt stays counted."""
    with contextlib.suppress(Exception), session_scope(cfg.database_url) as s:
        s.execute(
            update(JobTask)
            .where(JobTask.job_id == jid, JobTask.batch_idx == batch_idx, JobTask.kind == kind)
            .values(attempts=func.greatest(JobTask.attempts - 1, 0))
        )


def _set_error(cfg: Settings, segment_id: int, kind: str, reason: str | None) -> None:
    """Record (or, with None, clear) why `kind` failed for a segment; committed at once."""
    with session_scope(cfg.database_url) as s:
        if reason is None:
            s.execute(
                text("UPDATE segments SET errors = nullif(errors - CAST(:kind AS text), '{}'::jsonb) WHERE id = :id"),
                {"kind": kind, "id": segment_id},
            )
        else:
            s.execute(
                text(
                    "UPDATE segments SET errors = coalesce(errors, '{}'::jsonb) "
                    "|| jsonb_build_object(CAST(:kind AS text), CAST(:reason AS text)) WHERE id = :id"
                ),
                {"kind": kind, "reason": reason[:500], "id": segment_id},
            )


def _run_one_by_one(
    cfg: Settings, kind: str, engine: Any, batch: list[SegmentAudio], options: dict
) -> list[SegmentResult]:
    """The batch failed again and again: find the poison. Each segment runs alone, marked as under
    way beforehand, so one that kills the worker is known on the next delivery and skipped; one that
    raises keeps the reason. The other segments get their results; the batch then counts as done."""
    with session_scope(cfg.database_url) as s:
        earlier: dict[int, Any] = dict(
            s.execute(select(Segment.id, Segment.errors).where(Segment.id.in_([g.segment_id for g in batch]))).all()
        )
    results: list[SegmentResult] = []
    for seg in batch:
        if kind in (earlier.get(seg.segment_id) or {}):
            log.warning(
                "skipping poison segment", extra={"segments": str(seg.idx), "kind": kind, "code": "segment_failed"}
            )
            continue
        _set_error(cfg, seg.segment_id, kind, "the worker died while processing this segment")
        try:
            faults.before_run(cfg.fault_injection, kind, [seg])
            results += run_engine(engine, [seg], options)
        except Exception as exc:  # noqa: BLE001 - any engine failure marks this one segment
            _set_error(cfg, seg.segment_id, kind, f"{type(exc).__name__}: {exc}")
            log.warning("segment failed", extra={"segments": str(seg.idx), "kind": kind, "code": "segment_failed"})
            continue
        _set_error(cfg, seg.segment_id, kind, None)
    return results


# Segments closer than this are fetched in one ranged GET; a longer gap (silence) starts a new one,
# so a sparse batch never pulls hours of silence into memory.
MAX_GAP_S = 5.0
NO_SAMPLES = np.zeros(0, dtype=np.float32)


def _load_batch(storage: Storage, jid: uuid.UUID, rows: Sequence[Any]) -> list[SegmentAudio]:
    """The batch's audio: one ranged GET per run of nearby segments, sliced per segment."""
    runs: list[list] = []
    for r in rows:
        if runs and r.start_s - runs[-1][-1].end_s <= MAX_GAP_S:
            runs[-1].append(r)
        else:
            runs.append([r])
    out = []
    for run in runs:
        base = seconds_to_byte(run[0].start_s)
        samples = pcm_to_float(read_pcm(storage, jid, base, seconds_to_byte(run[-1].end_s)))
        for r in run:
            a = (seconds_to_byte(r.start_s) - base) // 2
            b = (seconds_to_byte(r.end_s) - base) // 2
            out.append(
                SegmentAudio(
                    segment_id=r.id,
                    idx=r.idx,
                    start_s=r.start_s,
                    end_s=r.end_s,
                    samples=samples[a:b],
                    text=r.text,
                    language=r.language,
                )
            )
    return out


def _store(s: Session, jid: uuid.UUID, kind: str, results: list[SegmentResult], asr_emotion: bool = True) -> None:
    """Write one kind's results. An ASR engine's emotion (SenseVoice) is kept unless the job runs a
    separate emotion engine (`asr_emotion` False), which then owns those columns; its audio events
    are always kept."""
    if kind == "embed":
        ids = [r.segment_id for r in results]
        s.execute(delete(Embedding).where(Embedding.segment_id.in_(ids)))
        copy_windows(s, jid, results)
        return
    for r in results:
        if kind == "asr":
            values: dict[str, Any] = {
                "text": r.text,
                "language": r.language,
                "confidence": r.confidence,
                "words": r.words,
            }
            if asr_emotion and r.emotion_source is not None:  # SenseVoice: emotion in the same pass
                values.update(emotion=r.emotion, emotion_scores=r.emotion_scores, emotion_source=r.emotion_source)
            if r.events is not None:
                values["events"] = r.events
        else:  # the emotion engine owns these columns: an engine without prosody clears them
            values = {
                "emotion": r.emotion,
                "emotion_scores": r.emotion_scores,
                "emotion_source": r.emotion_source,
                "prosody": r.prosody,
                "valence": r.valence,
            }
        s.execute(update(Segment).where(Segment.id == r.segment_id).values(**values))
