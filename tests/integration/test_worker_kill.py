"""Chaos at production defaults: a whole worker (main process and pool, its process group) is killed
outright (SIGKILL, as when a node dies or a container is OOM-killed) while it holds tasks of a
multi-segment job, and a fresh one is started. The broker would hand the dead worker's
unacknowledged messages back only after its visibility timeout (hours); the dead worker's leases
stop being renewed, so the janitor (in celery beat, inside the CPU worker started with -B, as in
the demo) sends its tasks again once they run out. The job then finishes: every segment has
exactly one result of each kind, and the transcript equals that of an undisturbed run. The same
for a CPU worker killed while it prepares. Each test records how long the job stood still
(kill -> the dead work started again) in artifacts/chaos-recovery.txt."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text, tuple_

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
    running celery beat (-B) and so the janitor, with the production leases and janitor settings."""
    # Short segments in small batches, so the job has dozens of tasks and a test can catch it in
    # the middle (the default merging makes the recording six segments in three batches).
    overrides = {"batch_speech_s": 3.0, "max_segment_s": 4.0, "merge_length_s": 0.0}
    with isolated_settings(base_settings, **overrides) as cfg:
        procs = Processes()
        env = settings_env(cfg)
        beat_db = tmp_path_factory.mktemp("beat")
        try:
            cpu = _start_cpu(procs, "chaos-cpu", env, beat_db)
            url = start_web(procs, "chaos-web", env)
            procs.wait_for_log("chaos-cpu", "ready.")
            yield {"settings": cfg, "procs": procs, "env": env, "url": url, "cpu": cpu, "beat_db": beat_db}
        finally:
            procs.stop()


def _start_cpu(procs: Processes, name: str, env: dict[str, str], beat_db: Path):  # type: ignore[no-untyped-def]
    """A CPU worker that also runs celery beat, and so the janitor (as infra/demo.sh starts it)."""
    return procs.start(name, [*celery_cmd(name, "cpu"), "-B", "-s", str(beat_db / name)], env)


def _record_recovery(what: str, seconds: float) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "chaos-recovery.txt").open("a") as f:
        f.write(f"{what}: {seconds:.1f} s\n")


def _started_again(cfg, job_id: str, pairs: list[tuple[int, str]], after: float, timeout: float = 240) -> float:  # type: ignore[no-untyped-def]
    """Wait until one of the tasks a dead worker held has begun again (its row's started_at later
    than the kill); returns that moment (time.time())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(cfg.database_url) as s:
            started = s.scalar(
                select(func.max(JobTask.started_at)).where(
                    JobTask.job_id == uuid.UUID(job_id), tuple_(JobTask.batch_idx, JobTask.kind).in_(pairs)
                )
            )
        if started is not None and started.timestamp() > after:
            return started.timestamp()
        time.sleep(0.2)
    pytest.fail("the dead worker's tasks were never sent again")


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

    # Kill it outright (main process and pool) once it is well into the job, in the middle of a task.
    held = _wait_mid_task(cfg, client, job_id, min_done=4)
    os.killpg(victim.pid, signal.SIGKILL)
    killed = time.time()
    victim.wait(timeout=10)
    done, running, total = _task_counts(cfg, job_id)
    assert done < total and running >= 1

    replacement = procs.start("chaos-model-2", celery_cmd("chaos-model-2", "asr,embed,emotion"), env)
    procs.wait_for_log("chaos-model-2", "ready.")
    ready = time.time()
    resumed = _started_again(cfg, job_id, held, killed)
    _record_recovery("model worker killed -> its task begun again", resumed - killed)
    _record_recovery("model worker killed: replacement ready -> its task begun again", resumed - ready)
    # The dead holder's lease (30 s) runs out and the next sweep (every 5 s) sends the work again.
    assert resumed - ready < 60, f"the job stood still {resumed - ready:.0f} s after the replacement was ready"
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
    chaos["reference"] = texts[again["id"]]


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


def _reference_texts(chaos: dict, client: HarkClient, recording: Path) -> list[str | None]:
    """The recording's segment texts from an undisturbed run (the first test's, when it ran)."""
    if "reference" not in chaos:
        job = client.wait(client.submit(str(recording), force="true")["id"], timeout_s=300)
        assert job["status"] == "done", job
        chaos["reference"] = _segment_texts(chaos["settings"], job["id"])
    return chaos["reference"]


def _segment_texts(cfg, job_id: str) -> list[str | None]:  # type: ignore[no-untyped-def]
    with session_scope(cfg.database_url) as s:
        return list(s.scalars(select(Segment.text).where(Segment.job_id == uuid.UUID(job_id)).order_by(Segment.idx)))


def test_killed_cpu_worker_during_prepare_loses_and_duplicates_nothing(chaos, recording) -> None:
    """The whole CPU worker (pool, main process and its embedded beat) is killed while it prepares
    a job; a fresh one (with beat, as the demo starts it) sends the prepare again once the dead
    worker's lease has run out, and the job ends as an undisturbed run does."""
    cfg, procs, env = chaos["settings"], chaos["procs"], chaos["env"]
    client = _client(chaos, "chaos-cpu-kill")
    model = procs.start("chaos-model-6", celery_cmd("chaos-model-6", "asr,embed,emotion"), env)
    procs.wait_for_log("chaos-model-6", "ready.")
    reference = _reference_texts(chaos, client, recording)

    job_id = client.submit(str(recording), force="true")["id"]
    deadline = time.monotonic() + 120
    while client.job(job_id)["status"] != "preparing":
        assert time.monotonic() < deadline, client.job(job_id)
        time.sleep(0.02)
    os.killpg(chaos["cpu"].pid, signal.SIGKILL)
    killed = time.time()
    chaos["cpu"].wait(timeout=10)
    assert client.job(job_id)["status"] == "preparing"

    chaos["cpu"] = _start_cpu(procs, "chaos-cpu-2", env, chaos["beat_db"])
    procs.wait_for_log("chaos-cpu-2", "ready.")
    ready = time.time()
    deadline = time.monotonic() + 240
    while True:  # moving again: a prepare began after the kill (the job's lease taken anew)
        with session_scope(cfg.database_url) as s:
            acquired = s.scalar(
                text(
                    "SELECT acquired_at FROM task_leases WHERE job_id = :j AND name = 'prepare' AND process <> 'sent'"
                ),
                {"j": uuid.UUID(job_id)},
            )
            status = s.scalar(text("SELECT status FROM jobs WHERE id = :j"), {"j": uuid.UUID(job_id)})
        if (acquired is not None and acquired.timestamp() > killed) or status != "preparing":
            resumed = acquired.timestamp() if acquired is not None else time.time()
            break
        assert time.monotonic() < deadline, "prepare was never sent again"
        time.sleep(0.2)
    _record_recovery("cpu worker killed in prepare -> prepare begun again", resumed - killed)
    _record_recovery("cpu worker killed: replacement ready -> prepare begun again", resumed - ready)
    assert resumed - ready < 60, f"the job stood still {resumed - ready:.0f} s after the replacement was ready"

    job = client.wait(job_id, timeout_s=300)
    assert job["status"] == "done", job
    model.terminate()
    model.wait(timeout=60)
    with session_scope(cfg.database_url) as s:
        jid = uuid.UUID(job_id)
        assert all(t.done_at is not None for t in s.execute(select(JobTask).where(JobTask.job_id == jid)).scalars())
        rows, distinct = s.execute(
            text("SELECT count(*), count(DISTINCT (segment_id, win_idx)) FROM embeddings WHERE job_id = :j"),
            {"j": jid},
        ).one()
        assert rows == distinct, "duplicated embedding rows"
        # Only the last prepare's segments exist, each once.
        idx = list(s.scalars(select(Segment.idx).where(Segment.job_id == jid).order_by(Segment.idx)))
        assert idx == list(range(len(idx)))
    assert _segment_texts(cfg, job_id) == reference
