"""Job progress that means something for a ten-hour file: where it is, how much audio is behind
it, and when it will be done, from the throughput measured on this very job.

While preparing, prepare writes how many seconds it has decoded (`decoded_s`) against what the
header promises (`declared_duration_s`). While inferring, each finished batch is a `job_tasks` row
with its seconds of speech; a segment (and its speech) is done when every kind of work on its
batch is. The ETA
divides what is left by the rate since the stage began (`stage_started_at`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, case, func, select, true
from sqlalchemy.orm import Session

from hark.models import Job, JobTask
from hark.status import JobStatus

# Share of the whole job each stage stands for in `fraction`.
PREPARE_SHARE, INFER_SHARE = 0.10, 0.85


@dataclass
class Progress:
    fraction: float
    stage: str
    segments_total: int | None = None
    segments_done: int = 0
    tasks_total: int = 0
    tasks_done: int = 0
    # Seconds of recording decoded by prepare (total: the header's promise until decoding ends).
    audio_s_total: float | None = None
    audio_s_done: float = 0.0
    # Seconds of speech whose model work is complete in every kind, out of all speech found.
    speech_s_total: float | None = None
    speech_s_done: float = 0.0
    eta_s: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TaskCounts:
    """Per-job aggregate of job_tasks: batches complete in every kind, and seconds of task work."""

    tasks_total: int = 0
    tasks_done: int = 0
    segments_done: int = 0
    speech_s_total: float = 0.0
    speech_s_done: float = 0.0  # speech whose batches are complete in every kind
    work_s_total: float = 0.0  # speech seconds summed over kinds: the work the ETA measures
    work_s_done: float = 0.0


def counts_query(job_id: Any) -> Select[Any]:
    """One row of TaskCounts' fields (in order) for `job_id`: a value, or `Job.id` to use the
    query as a lateral join beside the job's row (the status read, one statement)."""
    batches = (
        select(
            JobTask.first_idx,
            JobTask.last_idx,
            JobTask.speech_s,
            func.count().label("total"),
            func.count(JobTask.done_at).label("done"),
        )
        .where(JobTask.job_id == job_id)
        .group_by(JobTask.batch_idx, JobTask.first_idx, JobTask.last_idx, JobTask.speech_s)
        .correlate(Job)
        .subquery()
    )
    b = batches.c
    complete = b.done == b.total
    return select(
        func.coalesce(func.sum(b.total), 0).label("tasks_total"),
        func.coalesce(func.sum(b.done), 0).label("tasks_done"),
        func.coalesce(func.sum(case((complete, b.last_idx - b.first_idx + 1), else_=0)), 0).label("segments_done"),
        func.coalesce(func.sum(b.speech_s), 0.0).label("speech_s_total"),
        func.coalesce(func.sum(case((complete, b.speech_s), else_=0.0)), 0.0).label("speech_s_done"),
        func.coalesce(func.sum(b.speech_s * b.total), 0.0).label("work_s_total"),
        func.coalesce(func.sum(b.speech_s * b.done), 0.0).label("work_s_done"),
    )


def counts_from_row(values: Sequence[Any]) -> TaskCounts:
    """TaskCounts from counts_query's columns (PostgreSQL sums integers as numeric)."""
    tasks_total, tasks_done, segments_done, *seconds = values
    return TaskCounts(int(tasks_total), int(tasks_done), int(segments_done), *(float(x) for x in seconds))


def task_counts(s: Session, job_id: uuid.UUID) -> TaskCounts:
    return counts_from_row(s.execute(counts_query(job_id)).one())


def task_counts_of(s: Session, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TaskCounts]:
    """TaskCounts of many jobs in one statement (a batch's view), not one query per job."""
    if not job_ids:
        return {}
    counts = counts_query(Job.id).lateral("counts")
    rows = s.execute(select(Job.id, *counts.c).join(counts, true()).where(Job.id.in_(job_ids))).all()
    return {row[0]: counts_from_row(row[1:]) for row in rows}


def _eta(done: float, total: float, since: datetime | None, now: datetime) -> float | None:
    if since is None or done <= 0 or total <= done:
        return None if total > done else 0.0
    elapsed = (now - since).total_seconds()
    return round((total - done) * elapsed / done, 1) if elapsed > 0 else None


def job_progress(job: Job | SimpleNamespace, counts: TaskCounts, now: datetime | None = None) -> Progress:
    now = now or datetime.now(UTC)
    status = job.status
    if status == JobStatus.PREPARING:
        total = job.declared_duration_s
        done = job.decoded_s or 0.0
        share = min(1.0, done / total) if total else 0.0
        # Batches sent while decoding goes on (worker/tasks/prepare.py) are counted as they finish;
        # the fraction and ETA follow decoding, since the whole work is known only at its end.
        return Progress(
            fraction=round(PREPARE_SHARE * share, 4),
            stage=status,
            audio_s_total=total,
            audio_s_done=round(done, 3),
            eta_s=_eta(done, total or 0.0, job.stage_started_at, now) if total else None,
            segments_done=counts.segments_done,
            tasks_total=counts.tasks_total,
            tasks_done=counts.tasks_done,
            speech_s_total=round(counts.speech_s_total, 3) if counts.tasks_total else None,
            speech_s_done=round(counts.speech_s_done, 3),
        )
    fixed: dict[str, float] = {JobStatus.DONE: 1.0, JobStatus.REDUCING: PREPARE_SHARE + INFER_SHARE}
    progress = Progress(
        fraction=fixed.get(status, 0.0),
        stage=status,
        segments_total=job.segments_total,
        segments_done=counts.segments_done,
        tasks_total=counts.tasks_total,
        tasks_done=counts.tasks_done,
        audio_s_total=job.duration_s if job.duration_s is not None else job.declared_duration_s,
        audio_s_done=job.decoded_s or 0.0,
        speech_s_total=round(counts.speech_s_total, 3) if counts.tasks_total else None,
        speech_s_done=round(counts.speech_s_done, 3),
    )
    if status == JobStatus.INFERRING and counts.work_s_total:
        progress.fraction = round(PREPARE_SHARE + INFER_SHARE * counts.work_s_done / counts.work_s_total, 4)
        progress.eta_s = _eta(counts.work_s_done, counts.work_s_total, job.stage_started_at, now)
    elif status == JobStatus.DONE:
        progress.eta_s = 0.0
    return progress
