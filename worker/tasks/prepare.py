"""prepare(job): decode → canonical PCM in S3 → VAD segments in Postgres → fan out model batches.

Decoding, PCM upload and VAD share one pass over the recording in blocks, so the worker's memory
does not depend on the recording's length. Model work is fanned out as it becomes known: a batch
is sent once its segments are final and its audio is in S3, while the rest is still decoded, so
the model workers do not wait for the whole recording. Re-running it (redelivery) replaces what
an earlier attempt wrote.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hark.audio import SAMPLE_RATE, AudioError, DecodeLimits, DecodeReport, decode_stream, seconds_to_byte
from hark.db import session_scope
from hark.jobstate import advance, fail
from hark.models import Job, JobTask, Segment
from hark.pcm_store import PcmWriter
from hark.queues import PREPARE, REDUCE
from hark.settings import Settings
from hark.status import JobStatus
from hark.storage import Storage, vad_key
from worker import leases
from worker.batching import pack_clips
from worker.celery_app import app
from worker.engines import engine_class, get_vad
from worker.engines.vad_silero import FRAME_S, VadOptions, VadStream
from worker.language import DETECT_S, detects_language
from worker.resegment import SpeechProbabilities
from worker.tasks.common import JobStageTask, engine_name, planned_kinds, settings
from worker.tasks.dispatch import send_infer
from worker.timing import Clock

log = logging.getLogger("hark.prepare")
PROGRESS_EVERY_S = 5.0  # how often the decoded seconds are written to the job row
# Past the decode limit the loop itself fails the job; these Celery limits are the backstop for a
# decoder stuck inside one C call (soft: an exception in the task; hard: the process is replaced).
_SOFT_LIMIT_S = settings().decode_timeout_s + 600


@dataclass(frozen=True)
class Batch:
    first_idx: int
    last_idx: int
    speech_s: float


def plan_batches(spans: list[tuple[float, float]], batch_speech_s: float, clip_s: float = 0.0) -> list[Batch]:
    """Group consecutive segments into batches of about `batch_speech_s` seconds of speech, so one
    task costs about the same whatever the recording. A batch ends only where one of the ASR
    engine's clips ends (it packs consecutive segments into clips of up to `clip_s`), so no clip
    but the recording's last is cut short by a batch boundary and padded for nothing; batches
    smaller than a clip (0 turns this off) may end after any segment.

    The first batch is an eighth of the others (one clip, with the defaults): prepare can send
    it after the first minute of audio instead of the first three, so the model workers start
    while prepare still decodes. Each batch's end depends only on the segments before it, so a
    plan over a prefix of the segments is the start of the whole plan (tests/unit/test_pieces.py)."""
    rate = SAMPLE_RATE
    lengths = [int(round(b * rate)) - int(round(a * rate)) for a, b in spans]
    groups = (
        pack_clips(lengths, int(clip_s * rate))
        if clip_s and batch_speech_s >= clip_s
        else [(i, i) for i in range(len(spans))]
    )
    batches: list[Batch] = []
    first, total = 0, 0.0
    for group_first, last in groups:
        total += sum(end - start for start, end in spans[group_first : last + 1])
        if total >= (batch_speech_s if batches else batch_speech_s / 8) or last == len(spans) - 1:
            batches.append(Batch(first, last, round(total, 3)))
            first, total = last + 1, 0.0
    return batches


def decode_limits(cfg: Settings) -> DecodeLimits:
    return DecodeLimits(
        max_duration_s=cfg.max_duration_s,
        max_channels=cfg.max_channels,
        max_sample_rate=cfg.max_sample_rate,
        min_sample_rate=cfg.min_sample_rate,
        timeout_s=cfg.decode_timeout_s,
        max_damaged_fraction=cfg.max_damaged_fraction,
    )


def vad_options(cfg: Settings, options: dict) -> VadOptions:
    """The deployment's segmentation, with the job's own `merge_length_s` when it set one. A job
    with one speaker per channel merges nothing unless it asks: a segment is a turn there."""
    default = 0.0 if options.get("channels") == "separate" else cfg.merge_length_s
    return VadOptions.from_settings(cfg, float(options.get("merge_length_s", default)))


@app.task(
    name=PREPARE,
    bind=True,
    base=JobStageTask,
    failure_code="prepare_error",
    soft_time_limit=_SOFT_LIMIT_S,
    time_limit=_SOFT_LIMIT_S + 60,
)
def prepare(self: JobStageTask, job_id: str) -> None:
    cfg = settings()
    jid = uuid.UUID(job_id)
    clock = Clock()
    started, started_cpu = time.monotonic(), time.process_time()
    with clock.part("prepare_db"), session_scope(cfg.database_url) as s:
        if not self.take_lease(s, jid, "prepare"):
            return
        if not advance(s, jid, JobStatus.PREPARING, started_at=func.coalesce(Job.started_at, func.now())):
            log.info("job not preparable, skipping", extra={"job_id": job_id})
            return  # the lease goes with the task (JobStageTask)
        job = s.get(Job, jid)
        assert job is not None
        source_key, options, priority, tenant_id = job.source_key, dict(job.options or {}), job.priority, job.tenant_id
        # An earlier attempt's rows (redelivery): its tasks still in flight find their segments
        # gone and store nothing (worker/tasks/infer.py); this attempt sends its own.
        s.execute(delete(JobTask).where(JobTask.job_id == jid))
        s.execute(delete(Segment).where(Segment.job_id == jid))

    self.keep_lease(jid, "prepare")
    storage = Storage(cfg)
    report = DecodeReport()
    stream = get_vad(cfg).stream()
    segmentation = vad_options(cfg, options)
    vad = VadThread(stream, segmentation, cfg.stream_every_s)
    writer = PcmWriter(storage, jid)
    fanout = FanOut(cfg, jid, tenant_id, options, priority, clock, self.lease_holder())
    progress = _Progress(cfg.database_url, jid, report, clock)
    loop_started, loop_cpu_started, db_before = time.monotonic(), time.process_time(), clock.wall["prepare_db"]
    separate = options.get("channels") == "separate"
    layout: dict[str, float | int] = {}

    def feed(block: np.ndarray) -> None:
        vad.feed(block)
        writer.write(block.astype("<i2").tobytes())
        progress.tick()
        fanout.send_ready(vad.final, writer.readable_bytes)

    try:
        with storage.reader(source_key) as source:
            for block in decode_stream(source, report, limits=decode_limits(cfg), channel=0 if separate else None):
                feed(block)
        if separate:
            layout = _other_channels(storage, source_key, report, segmentation, cfg, feed)
        writer.finish()
        vad.finish()
    except (AudioError, SoftTimeLimitExceeded) as exc:
        writer.abort()
        code, message = (
            (exc.code, exc.message)
            if isinstance(exc, AudioError)
            else ("decode_timeout", f"prepare ran past its time limit of {_SOFT_LIMIT_S:.0f} s")
        )
        with session_scope(cfg.database_url) as s:
            fail(s, jid, code, message)
        log.warning("decode failed", extra={"job_id": job_id, "code": code})
        return
    except LeaseLost:
        # Another copy of prepare holds the job now and writes the same audio objects: leave them.
        log.warning("prepare's lease was taken over; stopping", extra={"job_id": job_id, "code": "lease_lost"})
        return
    except JobStopped:
        writer.abort()
        log.info("job stopped while preparing", extra={"job_id": job_id})
        return
    finally:
        vad.stop()
    # Decoding is the loop's time less what S3, the rows and waiting for the VAD took in it; its
    # CPU is the process's less the VAD thread's.
    loop_wall, loop_cpu = time.monotonic() - loop_started, time.process_time() - loop_cpu_started
    loop_other = vad.waited_s + storage.read_s + storage.write_s + clock.wall["prepare_db"] - db_before
    clock.add("decode", loop_wall - loop_other, loop_cpu - vad.cpu_s)
    clock.add("vad", vad.wall_s, vad.cpu_s)
    with clock.part("vad", cpu=True):
        spans = stream.segments(segmentation)
    clock.add("prepare_s3_read", storage.read_s)
    clock.add("prepare_s3_write", storage.write_s)
    batches = plan_batches(spans, cfg.batch_speech_s, cfg.asr_clip_s)
    if spans[: len(fanout.spans)] != fanout.spans or batches[: len(fanout.batches)] != fanout.batches:
        # Cannot happen while final_segments keeps its promise (tests/unit/test_vad.py); if it
        # ever does, the work already sent is for other segments, so the job must not go on.
        with session_scope(cfg.database_url) as s:
            fail(s, jid, "prepare_error", "the segments sent early differ from the recording's final segmentation")
        log.error("streamed segments changed", extra={"job_id": job_id, "code": "prepare_error"})
        return
    if not spans:
        writer.abort()  # nothing will ever read the audio
        with session_scope(cfg.database_url) as s:
            fail(s, jid, "no_speech", f"no speech found in {report.duration_s:.1f} s of audio")
        return
    storage.put_bytes(vad_key(jid), SpeechProbabilities(stream.probabilities(), FRAME_S).to_bytes())
    kinds = planned_kinds(options)

    db_started = time.monotonic()
    with session_scope(cfg.database_url) as s:
        job = s.get(Job, jid, with_for_update=True)
        if job is None or job.status != JobStatus.PREPARING:
            return
        if not leases.holds(s, jid, "prepare", self.lease_holder()):
            log.warning("prepare's lease was taken over; stopping", extra={"job_id": job_id, "code": "lease_lost"})
            return
        first_new = fanout.add_rows(s, spans, batches[len(fanout.batches) :])
        s.flush()
        # Everything but this transaction's commit is in the timings.
        clock.add("prepare_db", time.monotonic() - db_started)
        clock.add("prepare", time.monotonic() - started, time.process_time() - started_cpu)
        advance(
            s,
            jid,
            JobStatus.INFERRING,
            duration_s=round(report.duration_s, 3),
            decoded_s=round(report.duration_s, 3),
            segments_total=len(spans),
            tasks_total=len(batches) * len(kinds),
            damaged_s=round(report.damaged_s, 3),
            damaged_ranges=[[a, b] for a, b in report.damaged],
            timings=clock.merged(job.timings),
            # The row's own options, read under the lock: an ASR batch may have stored the
            # detected language since prepare began.
            options={**(job.options or {}), "source_codec": report.codec, "source_rate": report.source_rate, **layout},
        )
        # Every batch sent early may be done already; then no infer task will see the last one
        # finish (they do not reduce a job still preparing), so reduce starts here.
        remaining = s.scalar(
            select(func.count()).select_from(JobTask).where(JobTask.job_id == jid, JobTask.done_at.is_(None))
        )
        reduce_now = remaining == 0 and advance(s, jid, JobStatus.REDUCING)
    if reduce_now:
        app.send_task(REDUCE, args=[job_id])
    else:
        send_infer(job_id, fanout.release(first_new, last=True), options, priority=priority)
    log.info(
        "prepared",
        extra={
            "job_id": job_id,
            "segments": len(spans),
            "seconds": round(report.duration_s, 1),
            "stage": "prepare",
            "batches_sent_early": first_new,
            "damaged_s": round(report.damaged_s, 3),
        },
    )


def _other_channels(
    storage: Storage,
    source_key: str,
    report: DecodeReport,
    segmentation: VadOptions,
    cfg: Settings,
    feed: Callable[[np.ndarray], None],
) -> dict[str, float | int]:
    """Job option `channels: separate`: after channel 1 (already fed), the recording's other
    channels, each decoded on its own and laid after the previous one on the job's timeline,
    separated by silence longer than the VAD ever merges across, so every segment, and so every
    ASR and speaker task, holds one channel. Reduce maps the segments back to their channel's
    time (worker/channels.py). Returns the layout it needs, kept in the job's options."""
    stride_s = report.duration_s + max(min(segmentation.merge_length_s, segmentation.max_segment_s), 1.0) + 1.0
    stride = int(round(stride_s * SAMPLE_RATE))
    written = report.samples
    for channel in range(1, max(report.source_channels, 1)):
        feed(np.zeros(channel * stride - written, dtype=np.int16))
        written = channel * stride
        with storage.reader(source_key) as source:
            for block in decode_stream(source, DecodeReport(), limits=decode_limits(cfg), channel=channel):
                written += block.size
                feed(block)
    return {"source_channel_count": max(report.source_channels, 1), "source_channel_stride_s": stride / SAMPLE_RATE}


class JobStopped(Exception):
    """The job was cancelled or failed elsewhere while prepare was still decoding it."""


class LeaseLost(JobStopped):
    """A re-sent copy of prepare took this one's lease over (worker/leases.py)."""


class FanOut:
    """Sends model work for the batches whose segments are final while prepare still decodes.

    A batch goes out once the VAD says its segments can no longer change (`VadStream.final_segments`),
    it is not the last planned so far (that one may still grow), and its audio is already readable
    in S3. Segments and task rows are committed before the tasks are sent, as at the end."""

    def __init__(
        self,
        cfg: Settings,
        job_id: uuid.UUID,
        tenant_id: uuid.UUID,
        options: dict,
        priority: int,
        clock: Clock,
        holder: str = "",
    ) -> None:
        self.holder = holder  # prepare's lease holder: rows are written only while it holds the lease
        self.cfg, self.job_id, self.tenant_id, self.options, self.priority, self.clock = (
            cfg,
            job_id,
            tenant_id,
            options,
            priority,
            clock,
        )
        self.kinds = planned_kinds(options)
        # With `language: auto` the first ASR batch detects the recording's language from its
        # first DETECT_S seconds of speech, read from these rows: ASR (and the kinds reading its
        # text) waits until they exist, so the answer does not depend on how early a batch ran.
        self.after_language = (
            {k for k in self.kinds if k == "asr" or "text" in engine_class(engine_name(k, options)).consumes}
            if "asr" in self.kinds and detects_language(engine_name("asr", options), options)
            else set()
        )
        self.held: list[tuple[int, str]] = []
        self.spans: list[tuple[float, float]] = []  # segments whose rows exist
        self.batches: list[Batch] = []  # batches sent
        self._planned: list[Batch] = []  # final batches not sent yet
        self._final: list[tuple[float, float]] = []

    def send_ready(self, final: list[tuple[float, float]], readable_bytes: int) -> None:
        if len(final) > len(self._final):
            self._final = final
            self._planned = plan_batches(final, self.cfg.batch_speech_s, self.cfg.asr_clip_s)[len(self.batches) : -1]
        ready = []
        for batch in self._planned:
            if seconds_to_byte(self._final[batch.last_idx][1]) > readable_bytes:
                break
            ready.append(batch)
        if not ready:
            return
        self._planned = self._planned[len(ready) :]
        with self.clock.part("prepare_db"), session_scope(self.cfg.database_url) as s:
            job = s.get(Job, self.job_id, with_for_update=True)
            if job is None or job.status != JobStatus.PREPARING:
                raise JobStopped()
            if self.holder and not leases.holds(s, self.job_id, "prepare", self.holder):
                raise LeaseLost()
            first = self.add_rows(s, self._final, ready)
        send_infer(str(self.job_id), self.release(first), self.options, priority=self.priority)

    def release(self, first: int, last: bool = False) -> list[tuple[int, str]]:
        """The tasks to send for the batches from `first` on, with those held back before once
        the rows hold the language's speech (or at the `last` send, whatever they hold)."""
        tasks = [(n, k) for n in range(first, len(self.batches)) for k in self.kinds]
        if self.after_language and not last and sum(b - a for a, b in self.spans) < DETECT_S:
            self.held += [t for t in tasks if t[1] in self.after_language]
            return [t for t in tasks if t[1] not in self.after_language]
        self.after_language = set()  # the speech is there: nothing waits from now on
        tasks, self.held = self.held + tasks, []
        return tasks

    def add_rows(self, s: Session, spans: list[tuple[float, float]], batches: list[Batch]) -> int:
        """Rows for `batches`, numbered on from those sent, and for every segment up to the last of
        them; returns the first new batch's number."""
        first_batch = len(self.batches)
        upto = batches[-1].last_idx + 1 if batches else len(spans)
        s.add_all(
            Segment(job_id=self.job_id, tenant_id=self.tenant_id, idx=i, start_s=a, end_s=b)
            for i, (a, b) in enumerate(spans[len(self.spans) : upto], start=len(self.spans))
        )
        s.add_all(
            JobTask(
                job_id=self.job_id, batch_idx=n, kind=k, first_idx=b.first_idx, last_idx=b.last_idx, speech_s=b.speech_s
            )
            for n, b in enumerate(batches, start=first_batch)
            for k in self.kinds
        )
        self.spans = list(spans[:upto])
        self.batches += batches
        return first_batch


class VadThread:
    """Runs the VAD over decoded blocks in a thread of its own. The VAD's model (onnxruntime),
    decoding (PyAV) and the PCM upload (sockets) release the GIL, so the VAD runs beside the
    other two on a second core instead of after them; prepare took about half as long on two
    cores. Blocks wait in a short queue, so memory stays bounded when the VAD falls behind.

    Every `every_s` seconds of audio, and every tenth of what it has seen, it also publishes the
    segments that are final so far in `final` (a new list each time), for the fan-out."""

    def __init__(
        self, stream: VadStream, options: VadOptions | None = None, every_s: float = 0.0, depth: int = 8
    ) -> None:
        self.stream, self.options, self.every_s = stream, options, every_s
        self.final: list[tuple[float, float]] = []
        self._looked_at = 0  # samples seen when `final` was last computed
        self.wall_s = self.cpu_s = self.waited_s = 0.0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vad", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain after a failure; feed() reports it
            wall, cpu = time.monotonic(), time.thread_time()
            try:
                self.stream.feed(block)
                self._look()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the task's thread
                self._error = exc
            self.wall_s += time.monotonic() - wall
            self.cpu_s += time.thread_time() - cpu

    def _look(self) -> None:
        if self.options is None or self.every_s <= 0:
            return
        seen = self.stream.samples
        if seen - self._looked_at >= max(self.every_s * SAMPLE_RATE, 0.1 * seen):
            self._looked_at = seen
            self.final = self.stream.final_segments(self.options)

    def feed(self, block: np.ndarray) -> None:
        self._raise()
        started = time.monotonic()
        self._queue.put(block)
        self.waited_s += time.monotonic() - started

    def finish(self) -> None:
        """Wait until every block fed is through the VAD; raise what the VAD raised."""
        self.stop()
        self._raise()

    def stop(self) -> None:
        """Let the thread end once the queue is through (safe to call again)."""
        if self._thread.is_alive():
            started = time.monotonic()
            self._queue.put(None)
            self._thread.join()
            self.waited_s += time.monotonic() - started

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class _Progress:
    """Writes how far decoding got to the job row every few seconds, for progress and ETA."""

    def __init__(self, database_url: str, job_id: uuid.UUID, report: DecodeReport, clock: Clock) -> None:
        self.database_url, self.job_id, self.report, self.clock = database_url, job_id, report, clock
        self.last = time.monotonic()
        self.declared_sent = False

    def tick(self) -> None:
        now = time.monotonic()
        if self.declared_sent and now - self.last < PROGRESS_EVERY_S:
            return
        values: dict[str, float | None] = {"decoded_s": round(self.report.duration_s, 3)}
        if not self.declared_sent:
            values["declared_duration_s"] = self.report.declared_duration_s
            self.declared_sent = True
        with self.clock.part("prepare_db"), session_scope(self.database_url) as s:
            s.execute(update(Job).where(Job.id == self.job_id).values(**values))
        self.last = now
