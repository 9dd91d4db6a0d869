"""prepare(job): decode → canonical PCM in S3 → VAD segments in Postgres → fan out model batches.

Decoding, PCM upload and VAD share one pass over the recording in blocks, so the worker's memory
does not depend on the recording's length. Re-running it (redelivery) replaces what an earlier
attempt wrote.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func

from hark.audio import AudioError, DecodeReport, decode_stream
from hark.db import session_scope
from hark.jobstate import advance, fail
from hark.models import Job, JobTask, Segment
from hark.queues import MODEL_KINDS, PREPARE
from hark.storage import Storage, pcm_key
from worker.celery_app import app
from worker.engines.vad_silero import SileroVad, VadOptions
from worker.tasks.common import JobStageTask, engine_name, settings
from worker.tasks.dispatch import send_infer

log = logging.getLogger("hark.prepare")
_vad = SileroVad()


@dataclass(frozen=True)
class Batch:
    first_idx: int
    last_idx: int
    speech_s: float


def plan_batches(spans: list[tuple[float, float]], batch_speech_s: float) -> list[Batch]:
    """Group consecutive segments into batches of about `batch_speech_s` seconds of speech, so one
    task costs about the same whatever the recording."""
    batches: list[Batch] = []
    first, total = 0, 0.0
    for i, (start, end) in enumerate(spans):
        total += end - start
        if total >= batch_speech_s or i == len(spans) - 1:
            batches.append(Batch(first, i, round(total, 3)))
            first, total = i + 1, 0.0
    return batches


@app.task(name=PREPARE, bind=True, base=JobStageTask, failure_code="prepare_error")
def prepare(self, job_id: str) -> None:
    cfg = settings()
    jid = uuid.UUID(job_id)
    with session_scope(cfg.database_url) as s:
        if not advance(s, jid, "preparing", started_at=func.coalesce(Job.started_at, func.now())):
            log.info("job not preparable, skipping", extra={"job_id": job_id})
            return
        job = s.get(Job, jid)
        assert job is not None
        source_key, options = job.source_key, dict(job.options or {})

    storage = Storage(cfg)
    started = time.monotonic()
    report = DecodeReport()
    stream = _vad.stream()
    writer = storage.writer(pcm_key(jid))
    try:
        with storage.reader(source_key) as source:
            for block in decode_stream(source, report, max_duration_s=cfg.max_duration_s):
                writer.write(block.astype("<i2").tobytes())
                stream.feed(block)
        writer.finish()
    except AudioError as exc:
        writer.abort()
        with session_scope(cfg.database_url) as s:
            fail(s, jid, exc.code, exc.message)
        log.warning("decode failed", extra={"job_id": job_id, "code": exc.code})
        return
    decode_s = time.monotonic() - started
    spans = stream.segments(VadOptions(max_segment_s=cfg.max_segment_s))
    if not spans:
        with session_scope(cfg.database_url) as s:
            fail(s, jid, "no_speech", f"no speech found in {report.duration_s:.1f} s of audio")
        return
    batches = plan_batches(spans, cfg.batch_speech_s)
    kinds = [k for k in MODEL_KINDS if engine_name(k, options)]

    with session_scope(cfg.database_url) as s:
        job = s.get(Job, jid, with_for_update=True)
        if job is None or job.status != "preparing":
            return
        tenant_id = job.tenant_id
        s.execute(delete(JobTask).where(JobTask.job_id == jid))
        s.execute(delete(Segment).where(Segment.job_id == jid))
        s.add_all(
            Segment(job_id=jid, tenant_id=tenant_id, idx=i, start_s=a, end_s=b) for i, (a, b) in enumerate(spans)
        )
        s.add_all(
            JobTask(job_id=jid, batch_idx=n, kind=k, first_idx=b.first_idx, last_idx=b.last_idx, speech_s=b.speech_s)
            for n, b in enumerate(batches)
            for k in kinds
        )
        timings = dict(job.timings or {})
        timings["prepare_s"] = round(decode_s, 3)
        advance(
            s,
            jid,
            "inferring",
            duration_s=round(report.duration_s, 3),
            segments_total=len(spans),
            tasks_total=len(batches) * len(kinds),
            timings=timings,
            options={**options, "source_codec": report.codec, "source_rate": report.source_rate},
        )
    send_infer(job_id, [(n, k) for n in range(len(batches)) for k in kinds], options)
    log.info(
        "prepared",
        extra={"job_id": job_id, "segments": len(spans), "seconds": round(report.duration_s, 1), "stage": "prepare"},
    )
