"""Chaos: a model worker is killed outright (SIGKILL to its whole process group) while it holds tasks
of a multi-segment job. Its unacknowledged message would come back only after the broker's
visibility timeout (hours), so the janitor (celery beat in the CPU worker, with short deadlines here)
must notice the dead task and send it again. A new worker then finishes the job: every segment has
exactly one result of each kind, and the transcript equals that of an undisturbed run."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from hark.client import HarkClient
from hark.db import session_scope
from hark.models import JobTask, Segment
from tests.audiofiles import encode, read_wav
from tests.conftest import ARTIFACTS, Processes, celery_cmd, isolated_settings, settings_env, start_web

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chaos(base_settings, tmp_path_factory) -> Iterator[dict]:
    """A stack of its own (so killing its workers disturbs no other test): web, and a CPU worker
    running the janitor every second, presuming a started task dead after 6 s."""
    # Short segments in small batches, so the job has dozens of tasks and a test can catch it in
    # the middle (the default merging makes the recording six segments in three batches).
    overrides = {
        "batch_speech_s": 3.0,
        "max_segment_s": 4.0,
        "merge_length_s": 0.0,
        "janitor_interval_s": 1.0,
        "janitor_stale_s": 6.0,
        "janitor_lost_s": 3.0,
    }
    with isolated_settings(base_settings, **overrides) as cfg:
        procs = Processes()
        env = settings_env(cfg)
        beat_db = tmp_path_factory.mktemp("beat") / "schedule"
        try:
            procs.start("chaos-cpu", [*celery_cmd("chaos-cpu", "cpu"), "-B", "-s", str(beat_db)], env)
            url = start_web(procs, "chaos-web", env)
            procs.wait_for_log("chaos-cpu", "ready.")
            yield {"settings": cfg, "procs": procs, "env": env, "url": url}
        finally:
            procs.stop()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """The sample three times over, 2 s apart: about 90 s, dozens of batch tasks."""
    samples, rate = read_wav(SAMPLE)
    gap = np.zeros(2 * rate, dtype=np.float32)
    return encode(
        np.concatenate([samples, gap, samples, gap, samples]), rate, tmp_path_factory.mktemp("rec") / "three.wav", "wav"
    )


def _task_counts(cfg, job_id: str) -> tuple[int, int, int]:
    """Batch tasks of the job: done, running (begun, not finished), all."""
    with session_scope(cfg.database_url) as s:
        done, running, total = s.execute(
            select(
                func.count().filter(JobTask.done_at.is_not(None)),
                func.count().filter(JobTask.started_at.is_not(None), JobTask.done_at.is_(None)),
                func.count(),
            ).where(JobTask.job_id == uuid.UUID(job_id))
        ).one()
    return int(done), int(running), int(total)


def _client(chaos: dict, tenant: str) -> HarkClient:
    from hark.apikeys import create_key

    with session_scope(chaos["settings"].database_url) as s:
        return HarkClient(chaos["url"], create_key(s, tenant), timeout=120)


def _wait_mid_task(cfg, client: HarkClient, job_id: str, min_done: int) -> list[tuple[int, str]]:
    """Until the job is well under way (at least `min_done` batch tasks done, several to go) and a
    worker is in the middle of one; returns the (batch, kind) of the tasks running at that moment."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, running, total = _task_counts(cfg, job_id)
        if total and min_done <= done < total - 4 and running:
            with session_scope(cfg.database_url) as s:
                rows = s.execute(
                    select(JobTask.batch_idx, JobTask.kind).where(
                        JobTask.job_id == uuid.UUID(job_id), JobTask.started_at.is_not(None), JobTask.done_at.is_(None)
                    )
                ).all()
            if rows:
                return [tuple(r) for r in rows]
        time.sleep(0.02)
    pytest.fail(f"the job never got going: {client.job(job_id)}")


def test_killed_model_worker_loses_and_duplicates_nothing(chaos, recording) -> None:
    cfg, procs, env = chaos["settings"], chaos["procs"], chaos["env"]
    client = _client(chaos, "chaos")
    victim = procs.start("chaos-model-1", celery_cmd("chaos-model-1", "asr,embed,emotion"), env)
    procs.wait_for_log("chaos-model-1", "ready.")
    job_id = client.submit(str(recording))["id"]

    # Kill it outright once it is well into the job, in the middle of running a task.
    _wait_mid_task(cfg, client, job_id, min_done=4)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    done, running, total = _task_counts(cfg, job_id)
    assert done < total and running >= 1

    replacement = procs.start("chaos-model-2", celery_cmd("chaos-model-2", "asr,embed,emotion"), env)
    job = client.wait(job_id, timeout_s=240)
    assert job["status"] == "done", job
    disturbed = client.transcript(job_id, "txt")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "chaos-janitor.log").write_text(
        "\n".join(line for line in (ARTIFACTS / "chaos-cpu.log").read_text().splitlines() if "janitor" in line)
    )

    with session_scope(cfg.database_url) as s:
        jid = uuid.UUID(job_id)
        tasks = s.execute(select(JobTask).where(JobTask.job_id == jid)).scalars().all()
        assert all(t.done_at is not None for t in tasks)
        assert max(t.attempts for t in tasks) >= 2, "the task the killed worker was running never ran again"
        segments = s.execute(select(Segment).where(Segment.job_id == jid)).scalars().all()
        assert segments and all(g.text is not None and g.emotion is not None for g in segments)
        rows, distinct, covered = s.execute(
            text(
                "SELECT count(*), count(DISTINCT (segment_id, win_idx)), count(DISTINCT segment_id) "
                "FROM embeddings WHERE job_id = :j"
            ),
            {"j": jid},
        ).one()
        assert rows == distinct, "duplicated embedding rows"
        embedded = sum(1 for g in segments if g.end_s - g.start_s >= 1.0)
        assert covered >= embedded

    # The same recording, undisturbed, gives the same transcript.
    again = client.wait(client.submit(str(recording), force="true")["id"], timeout_s=240)
    assert again["status"] == "done"
    undisturbed = client.transcript(again["id"], "txt")
    replacement.terminate()
    replacement.wait(timeout=60)
    (ARTIFACTS / "chaos-transcripts.txt").write_bytes(disturbed + b"\n=====\n" + undisturbed)
    with session_scope(cfg.database_url) as s:
        texts = {
            str(j): [
                t
                for (t,) in s.execute(select(Segment.text).where(Segment.job_id == uuid.UUID(j)).order_by(Segment.idx))
            ]
            for j in (job_id, again["id"])
        }
    assert texts[job_id] == texts[again["id"]]
    assert undisturbed == disturbed


def test_sigterm_lets_a_model_worker_finish_its_task_and_exit(chaos, recording) -> None:
    """Graceful shutdown: on SIGTERM (what Kubernetes and compose send) the worker finishes the
    task in hand, takes no new one, and exits; a new worker finishes the job."""
    cfg, procs, env = chaos["settings"], chaos["procs"], chaos["env"]
    client = _client(chaos, "chaos-term")
    worker = procs.start("chaos-model-3", celery_cmd("chaos-model-3", "asr,embed,emotion"), env)
    procs.wait_for_log("chaos-model-3", "ready.")
    job_id = client.submit(str(recording))["id"]
    in_hand = _wait_mid_task(cfg, client, job_id, min_done=2)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    with session_scope(cfg.database_url) as s:
        rows = {
            (r.batch_idx, r.kind): r
            for r in s.execute(select(JobTask).where(JobTask.job_id == uuid.UUID(job_id))).scalars()
        }
    assert all(rows[k].done_at is not None and rows[k].attempts == 1 for k in in_hand), (
        "the task in hand was not finished"
    )
    assert any(r.done_at is None for r in rows.values()), "the worker kept taking work after SIGTERM"

    replacement = procs.start("chaos-model-4", celery_cmd("chaos-model-4", "asr,embed,emotion"), env)
    assert client.wait(job_id, timeout_s=240)["status"] == "done"
    replacement.terminate()
    replacement.wait(timeout=60)


def test_poison_segments_fail_alone_and_the_job_ends_partial(chaos, recording) -> None:
    """One segment whose ASR always raises, one whose embedding kills the worker process: after the
    whole batch failed a few times it runs segment by segment, those two segments are marked failed
    with their reasons, every other segment gets its results, and the job ends done, partial."""
    cfg, procs, env = chaos["settings"], chaos["procs"], chaos["env"]
    client = _client(chaos, "chaos-poison")
    worker = procs.start(
        "chaos-model-5",
        celery_cmd("chaos-model-5", "asr,embed,emotion"),
        {**env, "HARK_FAULT_INJECTION": "asr:raise@2,embed:crash@4"},
    )
    procs.wait_for_log("chaos-model-5", "ready.")
    job = client.wait(client.submit(str(recording))["id"], timeout_s=300)
    worker.terminate()
    worker.wait(timeout=60)
    assert job["status"] == "done", job
    assert job["partial"] is True
    failed = {f["idx"]: f["errors"] for f in job["failed_segments"]}
    assert set(failed) == {2, 4}, failed
    assert "injected fault" in failed[2]["asr"]
    assert "worker died" in failed[4]["embed"]
    with session_scope(cfg.database_url) as s:
        segments = (
            s.execute(select(Segment).where(Segment.job_id == uuid.UUID(job["id"])).order_by(Segment.idx))
            .scalars()
            .all()
        )
        assert segments[2].text is None
        assert all(g.text is not None for g in segments if g.idx != 2)  # a result, if only "" for a breath
        embedded = {
            sid
            for (sid,) in s.execute(
                text("SELECT DISTINCT segment_id FROM embeddings WHERE job_id = :j"), {"j": job["id"]}
            )
        }
        assert segments[4].id not in embedded
        assert all(g.id in embedded for g in segments if g.idx != 4 and g.end_s - g.start_s >= 1.0)
    assert client.transcript(job["id"], "txt")
