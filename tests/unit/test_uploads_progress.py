"""Pure parts of direct uploads, batches and progress: part planning, inbox rules, batch status,
and the progress/ETA arithmetic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hark.models import Job
from hark.storage import in_inbox, inbox_prefix
from hark.uploads import MAX_PARTS, MIN_PART, plan_parts
from web.batches import batch_status
from web.progress import TaskCounts, job_progress


def test_parts_cover_the_file_within_s3_limits():
    plan = plan_parts(1000 * 1024**2, 64 * 1024**2)
    assert plan.part_bytes == 64 * 1024**2 and plan.parts == 16
    assert plan.parts * plan.part_bytes >= 1000 * 1024**2 > (plan.parts - 1) * plan.part_bytes
    huge = plan_parts(2 * 1024**4, 64 * 1024**2)  # 2 TiB would need 32768 parts of 64 MiB
    assert huge.parts <= MAX_PARTS and huge.parts * huge.part_bytes >= 2 * 1024**4
    assert plan_parts(10, 1).part_bytes == MIN_PART and plan_parts(10, 1).parts == 1
    with pytest.raises(ValueError):
        plan_parts(0, MIN_PART)


def test_inbox_keys_stay_inside_the_tenant_prefix():
    me, other = uuid.uuid4(), uuid.uuid4()
    mine = inbox_prefix(me)
    assert in_inbox(me, mine + "2026/meeting.mp3")
    assert not in_inbox(me, inbox_prefix(other) + "meeting.mp3")
    assert not in_inbox(me, "raw/" + str(other) + "/x.wav")
    for sneaky in ("../" + str(other) + "/x.wav", "a/../../x.wav", "a//x.wav", "./x.wav", ""):
        assert not in_inbox(me, mine + sneaky), sneaky
    assert not in_inbox(me, mine[:-1] + "x/y.wav")  # a tenant id that merely starts the same


def test_batch_status_aggregates_its_jobs():
    assert batch_status(["queued", "queued"]) == "queued"
    assert batch_status(["done", "inferring"]) == "running"
    assert batch_status(["done", "done"]) == "done"
    assert batch_status(["done", "failed"]) == "partial"
    assert batch_status(["failed", "cancelled"]) == "failed"


def job(status: str, **kw) -> Job:
    return Job(id=uuid.uuid4(), tenant_id=uuid.uuid4(), status=status, options={}, timings={}, **kw)


def test_prepare_progress_and_eta_from_decode_rate():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    j = job("preparing", declared_duration_s=36000.0, decoded_s=3600.0, stage_started_at=now - timedelta(seconds=60))
    p = job_progress(j, TaskCounts(), now)
    assert p.audio_s_done == 3600.0 and p.audio_s_total == 36000.0
    assert p.fraction == pytest.approx(0.01)
    assert p.eta_s == pytest.approx(540.0)  # 1 h per minute measured; 9 h to go
    # Batches already sent while decoding goes on show as they finish; the fraction follows decoding.
    streamed = job_progress(
        j,
        TaskCounts(
            tasks_total=6,
            tasks_done=3,
            segments_done=4,
            speech_s_total=200.0,
            speech_s_done=100.0,
            work_s_total=600.0,
            work_s_done=300.0,
        ),
        now,
    )
    assert (streamed.tasks_done, streamed.tasks_total, streamed.segments_done) == (3, 6, 4)
    assert (streamed.speech_s_done, streamed.speech_s_total) == (100.0, 200.0)
    assert streamed.fraction == p.fraction and streamed.eta_s == p.eta_s


def test_infer_progress_counts_segments_whose_batches_are_complete():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    j = job(
        "inferring",
        duration_s=7200.0,
        decoded_s=7200.0,
        segments_total=40,
        stage_started_at=now - timedelta(seconds=100),
    )
    counts = TaskCounts(
        tasks_total=12,
        tasks_done=6,
        segments_done=10,
        speech_s_total=400.0,
        speech_s_done=100.0,
        work_s_total=1200.0,
        work_s_done=400.0,
    )
    p = job_progress(j, counts, now)
    assert (p.segments_done, p.segments_total, p.speech_s_done, p.speech_s_total) == (10, 40, 100.0, 400.0)
    assert p.fraction == pytest.approx(0.1 + 0.85 / 3, abs=1e-3)
    assert p.eta_s == pytest.approx(200.0)  # a third of the work in 100 s
    assert job_progress(job("done"), counts, now).fraction == 1.0
