"""Getting recordings in, for real (web, S3 server, Redis, Celery workers in their own processes):
presigned direct uploads and their janitor, jobs from inbox objects, dedupe, archive batches,
and interactive work overtaking an overnight archive in the queue."""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
from sqlalchemy import select

from hark.apikeys import create_key
from hark.client import ApiError, HarkClient, put_part
from hark.db import session_scope
from hark.models import Job, Tenant
from hark.queues import INFER, MODEL_KINDS, PREPARE, PRIORITIES, make_celery, model_priority
from hark.storage import Storage, inbox_prefix, raw_key
from hark.uploads import abort_abandoned
from tests.audiofiles import read_wav
from tests.conftest import Processes, celery_cmd, settings_env

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"
MIB = 1024**2

pytestmark = pytest.mark.integration


def tenant(settings, name: str) -> tuple[str, uuid.UUID]:
    with session_scope(settings.database_url) as s:
        key = create_key(s, name)
        tid = s.scalar(select(Tenant.id).where(Tenant.name == name))
    return key, tid


@pytest.fixture(scope="module")
def intake(stack, settings):
    """Its own tenant, so dedupe here never meets the other modules' submissions."""
    key, tid = tenant(settings, "tenant-intake")
    return HarkClient(stack["url"], key, timeout=120), tid


def clip(tmp_path: Path, seconds: float, name: str, pad_s: float = 0.0) -> Path:
    """The sample's speech from 6.5 s on, `seconds` long, optionally followed by silence."""
    samples, rate = read_wav(SAMPLE)
    audio = np.concatenate([samples[int(6.5 * rate) : int((6.5 + seconds) * rate)], np.zeros(int(pad_s * rate))])
    path = tmp_path / name
    soundfile.write(str(path), audio, rate, subtype="PCM_16")
    return path


def wait_batch(client: HarkClient, batch_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        batch = client.batch(batch_id)
        if batch["status"] in ("done", "partial", "failed"):
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.5)


def test_direct_upload_in_parts_runs_end_to_end(intake, settings, tmp_path):
    client, _ = intake
    # 12 s of speech and six minutes of silence: about 12 MB, three parts of 5 MiB.
    path = clip(tmp_path, 12.0, "long.wav", pad_s=360.0)
    plan = client.create_upload(path.name, path.stat().st_size)
    assert plan["part_size"] == 5 * MIB and len(plan["parts"]) == 3
    waiting = client.job(plan["job_id"])
    assert waiting["status"] == "uploading" and waiting["progress"]["fraction"] == 0.0
    etags = []
    with path.open("rb") as f:
        for part in plan["parts"]:
            etags.append({"part_number": part["part_number"], "etag": put_part(part["url"], f.read(plan["part_size"]))})
    job = client.complete_upload(plan["upload_id"], etags)
    assert job["id"] == plan["job_id"] and job["status"] in ("queued", "preparing")  # the worker may be quick
    with pytest.raises(ApiError) as err:  # completing twice is refused, not a second job
        client.complete_upload(plan["upload_id"], etags)
    assert err.value.status == 409
    final = client.wait(job["id"], timeout_s=300)
    assert final["status"] == "done", final
    assert final["bytes"] == path.stat().st_size
    assert final["duration_s"] == pytest.approx(12.0 + 360.0, abs=0.05)
    progress = final["progress"]
    assert progress["segments_done"] == progress["segments_total"] > 0
    assert progress["speech_s_done"] == progress["speech_s_total"] > 5.0
    assert progress["audio_s_done"] == pytest.approx(372.0, abs=0.05) and progress["eta_s"] == 0.0
    assert "hello" in client.transcript(job["id"], "txt").decode().lower()


def test_completing_with_wrong_etags_is_refused(intake, tmp_path):
    client, _ = intake
    path = clip(tmp_path, 3.0, "x.wav")
    plan = client.create_upload(path.name, path.stat().st_size)
    put_part(plan["parts"][0]["url"], path.read_bytes())
    with pytest.raises(ApiError) as err:
        client.complete_upload(plan["upload_id"], [{"part_number": 1, "etag": '"0123456789abcdef0123456789abcdef"'}])
    assert err.value.status == 400 and err.value.code == "invalid_parts"
    with pytest.raises(ApiError) as err:
        client.complete_upload(plan["upload_id"], [{"part_number": 2, "etag": "x"}])
    assert err.value.code == "invalid_parts"


def test_abandoned_uploads_are_aborted_and_their_jobs_failed(intake, settings):
    client, _ = intake
    plan = client.create_upload("abandoned.wav", 12 * MIB)
    put_part(plan["parts"][0]["url"], b"\0" * plan["part_size"])
    storage = Storage(settings)
    key = raw_key(plan["job_id"], "abandoned.wav")
    assert any(u["Key"] == key for u in storage.multipart_uploads("raw/"))
    assert abort_abandoned(settings).uploads == []  # a fresh upload is left alone
    report = abort_abandoned(replace(settings, upload_abandon_s=0.0))
    assert uuid.UUID(plan["upload_id"]) in report.uploads
    job = client.job(plan["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "upload_abandoned"
    assert not any(u["Key"] == key for u in storage.multipart_uploads("raw/"))
    with pytest.raises(ApiError) as err:
        client.complete_upload(plan["upload_id"], [{"part_number": 1, "etag": "x"}])
    assert err.value.status == 409


def test_job_from_an_inbox_object_and_never_another_tenants(intake, settings, stack, tmp_path):
    client, tid = intake
    storage = Storage(settings)
    data = clip(tmp_path, 9.0, "inbox.wav").read_bytes()
    mine = inbox_prefix(tid) + "calls/inbox.wav"
    storage.put_bytes(mine, data)
    job = client.submit_object(mine)
    assert job["status"] in ("queued", "preparing") and job["bytes"] == len(data)
    other_key, other_tid = tenant(settings, "tenant-intake-other")
    theirs = inbox_prefix(other_tid) + "secret.wav"
    storage.put_bytes(theirs, data)
    for key in (theirs, inbox_prefix(tid) + "../" + str(other_tid) + "/secret.wav", raw_key(job["id"], "inbox.wav")):
        with pytest.raises(ApiError) as err:
            client.submit_object(key)
        assert err.value.status == 403 and err.value.code == "key_not_allowed"
    with pytest.raises(ApiError) as err:
        client.submit_object(inbox_prefix(tid) + "missing.wav")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:  # the other tenant cannot batch our inbox either
        HarkClient(stack["url"], other_key).submit_prefix(inbox_prefix(tid))
    assert err.value.status == 403
    final = client.wait(job["id"], timeout_s=300)
    assert final["status"] == "done", final
    assert final["duration_s"] == pytest.approx(9.0, abs=0.05)


def test_resubmitting_returns_the_existing_job_unless_forced(intake, tmp_path):
    client, _ = intake
    path = clip(tmp_path, 5.0, "same.wav")
    first = client.submit(str(path))
    again = client.submit(str(path))
    assert again["id"] == first["id"]
    direct = client.submit_direct(str(path), sha256=first["sha256"])
    assert direct["id"] == first["id"]  # a direct upload stating the same content is deduped too
    forced = client.submit(str(path), force="true")
    assert forced["id"] != first["id"]
    for jid in (first["id"], forced["id"]):
        assert client.wait(jid, timeout_s=300)["status"] == "done"


def test_resubmit_answers_200_with_the_job(intake, tmp_path):
    client, _ = intake
    path = clip(tmp_path, 4.0, "twice.wav")
    created = client._request("POST", "/v1/jobs", *_form(path))
    repeated = client._request("POST", "/v1/jobs", *_form(path))
    assert created[0] == 201 and repeated[0] == 200
    assert json.loads(created[1])["id"] == json.loads(repeated[1])["id"]


def _form(path: Path) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n\r\n'.encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_batch_of_files_is_one_job_each_with_aggregate_status(intake, tmp_path):
    client, _ = intake
    paths = [clip(tmp_path, s, f"b{i}.wav") for i, s in enumerate((6.0, 7.0, 8.0))]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    batch = client.submit_batch([*map(str, paths), str(paths[0]), str(empty)], name="archive")
    assert batch["priority"] == "overnight" and batch["jobs_total"] == 3
    assert [d["filename"] for d in batch["duplicates"]] == ["b0.wav"]
    assert batch["rejected"] == [{"filename": "empty.wav", "code": "empty_upload"}]
    job = client.job(batch["jobs"][0]["id"])
    assert job["batch_id"] == batch["id"] and job["priority"] == "overnight"
    final = wait_batch(client, batch["id"])
    assert final["status"] == "done" and final["counts"] == {"done": 3}
    assert final["progress"]["fraction"] == 1.0
    assert final["progress"]["audio_s_done"] == pytest.approx(21.0, abs=0.1)


def test_batch_from_an_inbox_prefix(intake, settings, tmp_path):
    client, tid = intake
    storage = Storage(settings)
    for i, seconds in enumerate((5.0, 6.5)):
        storage.put_bytes(inbox_prefix(tid) + f"night/{i}.wav", clip(tmp_path, seconds, f"n{i}.wav").read_bytes())
    storage.put_bytes(inbox_prefix(tid) + "elsewhere/x.wav", clip(tmp_path, 4.0, "x.wav").read_bytes())
    batch = client.submit_prefix(inbox_prefix(tid) + "night/")
    assert batch["jobs_total"] == 2 and sorted(j["filename"] for j in batch["jobs"]) == ["0.wav", "1.wav"]
    final = wait_batch(client, batch["id"])
    assert final["status"] == "done", final


def silent_wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(seconds * 16000), dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_interactive_job_overtakes_a_queued_archive(settings, tmp_path):
    """Four overnight prepares and then one interactive one wait in the queue before any worker
    runs; a real worker, started afterwards, must take the interactive job first."""
    cfg = replace(settings, broker_key_prefix=settings.broker_key_prefix + "prio:")
    _, tid = tenant(cfg, "tenant-priority")
    storage = Storage(cfg)
    order = ["overnight"] * 4 + ["interactive"]
    jobs: list[tuple[uuid.UUID, int]] = []
    with session_scope(cfg.database_url) as s:
        for i, name in enumerate(order):
            jid = uuid.uuid4()
            storage.put_bytes(raw_key(jid, "quiet.wav"), silent_wav(1.0 + i * 0.1))
            s.add(
                Job(
                    id=jid,
                    tenant_id=tid,
                    status="queued",
                    filename="quiet.wav",
                    source_key=raw_key(jid, "quiet.wav"),
                    priority=PRIORITIES[name],
                )
            )
            jobs.append((jid, PRIORITIES[name]))
    app = make_celery(cfg, name="test-priority")
    for jid, priority in jobs:
        app.send_task(PREPARE, args=[str(jid)], priority=priority)
    procs = Processes()
    try:
        procs.start("worker-priority", celery_cmd("prio", "cpu"), settings_env(cfg))
        deadline = time.monotonic() + 180
        while True:
            with session_scope(cfg.database_url) as s:
                rows = s.execute(
                    select(Job.id, Job.status, Job.started_at).where(Job.id.in_([j for j, _ in jobs]))
                ).all()
            if all(r.status == "failed" for r in rows):
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.5)
    finally:
        procs.stop()
    started = [r.id for r in sorted(rows, key=lambda r: r.started_at)]
    assert started[0] == jobs[-1][0], "the interactive job was not served first"


def test_a_jobs_embeddings_are_taken_before_its_asr_and_interactive_before_overnight(settings):
    """Model tasks wait in the real broker, sent as prepare sends them (each batch's ASR first);
    a consumer of the three model queues, as a model worker is, must take them in this order:
    interactive embeddings, interactive ASR and emotion, overnight embeddings, overnight rest."""
    from kombu import Queue

    cfg = replace(settings, broker_key_prefix=settings.broker_key_prefix + "steps:")
    app = make_celery(cfg, name="test-steps")
    for name in ("overnight", "interactive"):
        for batch in range(3):
            for kind in ("asr", "emotion", "embed"):
                app.send_task(
                    INFER,
                    kwargs={"job_id": name, "batch_idx": batch, "kind": kind},
                    priority=model_priority(PRIORITIES[name], kind),
                )
    taken: list[tuple[str, str]] = []

    def take(body, message) -> None:
        kwargs = body[1]
        taken.append((kwargs["job_id"], kwargs["kind"]))
        message.ack()

    with (
        app.connection_for_read() as conn,
        conn.Consumer([Queue(k) for k in MODEL_KINDS], callbacks=[take], accept=["json"]),
    ):
        deadline = time.monotonic() + 30
        while len(taken) < 18 and time.monotonic() < deadline:
            conn.drain_events(timeout=5)
    assert len(taken) == 18
    order = [(job, "embed" if kind == "embed" else "rest") for job, kind in taken]
    expected = [
        (job, part)
        for job in ("interactive", "overnight")
        for part in ("embed", "rest")
        for _ in range(3 if part == "embed" else 6)
    ]
    assert order == expected, taken
