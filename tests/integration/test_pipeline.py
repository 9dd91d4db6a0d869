"""The whole path for real: HTTP upload → S3 → Celery workers in their own processes → Postgres
→ exports, on the shared real recording, plus bad inputs that must fail clearly."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from hark.client import ApiError
from hark.db import session_scope
from hark.models import Embedding, Job, JobTask, Segment, Speaker
from hark.pcm_store import pcm_prefix
from hark.storage import Storage, out_key, vad_key
from tests.audiofiles import encode, read_wav
from tests.der import der_parts, read_rttm
from worker.affect import SegmentMeasures, assess

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"

pytestmark = pytest.mark.integration


def test_empty_upload_is_rejected(client, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ApiError) as err:
        client.submit(str(empty))
    assert err.value.status == 400 and err.value.code == "empty_upload"


def test_missing_key_is_rejected(stack):
    from hark.client import HarkClient

    with pytest.raises(ApiError) as err:
        HarkClient(stack["url"], "hark_not_a_key").submit(str(SAMPLE))
    assert err.value.status == 401 and err.value.code == "invalid_api_key"


def test_bad_options_are_rejected(client):
    with pytest.raises(ApiError) as err:
        client.submit(str(SAMPLE), {"num_speakers": "many"})
    assert err.value.status == 400 and err.value.code == "invalid_options"


@pytest.mark.parametrize(
    "name,make,code",
    [
        ("notes.wav", lambda p: p.write_text("meeting notes, not audio\n" * 50), "undecodable_audio"),
        ("cut.mp3", "truncated_mp3", "truncated_audio"),
        ("silence.flac", "silence_flac", "no_speech"),
    ],
)
def test_bad_recordings_fail_with_reason(client, settings, tmp_path, name, make, code):
    path = tmp_path / name
    if make == "truncated_mp3":
        samples, rate = read_wav(SAMPLE)
        full = encode(samples, rate, tmp_path / "full.mp3", "mp3").read_bytes()
        path.write_bytes(full[: len(full) // 3])
    elif make == "silence_flac":
        encode(np.zeros(16000 * 5, dtype=np.float32), 16000, path, "flac")
    else:
        make(path)
    job = client.submit(str(path))
    final = client.wait(job["id"], timeout_s=120)
    assert final["status"] == "failed"
    assert final["error"]["code"] == code
    assert final["error"]["message"]
    with pytest.raises(ApiError) as err:
        client.transcript(job["id"], "txt")
    assert err.value.status == 409
    # No half-written canonical audio is left behind for a recording that could not be decoded.
    if code != "no_speech":
        assert not list(Storage(settings).objects(pcm_prefix(job["id"])))


@pytest.fixture(scope="module")
def sample_job(client):
    job = client.submit(str(SAMPLE), force="true")  # other tests submit the sample too
    assert job["status"] in ("queued", "preparing")  # prepare may have begun
    return client.wait(job["id"], timeout_s=300)


def test_sample_goes_end_to_end(sample_job, client, settings):
    """Runs after the bad inputs above: the same workers must still serve the next job."""
    assert sample_job["status"] == "done", sample_job
    assert sample_job["duration_s"] == pytest.approx(30.0, abs=0.05)
    assert sample_job["progress"]["fraction"] == 1.0
    doc = client.document(sample_job["id"])
    assert len(doc["speakers"]) == 2
    text = " ".join(u["text"] for u in doc["utterances"]).lower()
    assert len(text.split()) >= 30
    for word in ("hello", "new jersey", "chicago"):
        assert word in text
    assert {u["speaker"] for u in doc["utterances"]} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(u["emotion_source"] == "prosody+text" for u in doc["utterances"])
    assert all("arousal" in u and "heated" in u and "valence" in u for u in doc["utterances"])


def test_sample_rows_in_postgres(sample_job, settings):
    jid = uuid.UUID(sample_job["id"])
    with session_scope(settings.database_url) as s:
        job = s.get(Job, jid)
        segments = s.execute(select(Segment).where(Segment.job_id == jid).order_by(Segment.idx)).scalars().all()
        speakers = s.execute(select(Speaker).where(Speaker.job_id == jid)).scalars().all()
        tasks = s.execute(select(JobTask).where(JobTask.job_id == jid)).scalars().all()
        windows = s.scalar(select(Embedding.id).where(Embedding.job_id == jid).limit(1))
    assert job.status == "done" and job.sha256 and job.bytes == SAMPLE.stat().st_size
    assert segments and [g.idx for g in segments] == list(range(len(segments)))
    for g in segments:
        assert 0 <= g.start_s < g.end_s <= job.duration_s + 1e-6
        assert g.speaker in {"SPEAKER_00", "SPEAKER_01"}
        assert g.language == "en"
        assert g.emotion in {"happy", "sad", "angry", "neutral", "fearful", "disgusted", "surprised"}
    # Speech in the sample starts at 6.69 s (reference RTTM); VAD must not invent speech before.
    assert segments[0].start_s == pytest.approx(6.69, abs=0.4)
    assert sum(g.text is not None and len(g.text) > 0 for g in segments) == len(segments)
    # The prosody engine measured every segment, and reduce put it against each speaker's
    # baseline: what is stored is what worker/affect.py makes of the stored measures.
    for g in segments:
        assert g.emotion_source == "prosody+text" and g.valence is not None
        assert 75 <= g.prosody["f0_median_hz"] <= 600 and g.prosody["speaking_rate"] > 1
        assert 0 <= g.prosody["pause_ratio"] < 1 and g.prosody["hnr_db"] is not None
    measures = [
        SegmentMeasures(g.speaker, {k: v for k, v in g.prosody.items() if k != "loudness_db"}, g.valence)
        for g in segments
    ]
    for g, a in zip(segments, assess(measures), strict=True):
        assert g.prosody["loudness_db"] == pytest.approx(a.loudness_db, abs=0.01)
        assert (g.arousal, g.heated, g.emotion) == (
            pytest.approx(a.arousal, abs=1e-3) if a.arousal is not None else None,
            a.heated,
            a.emotion,
        )
    assert {sp.label for sp in speakers} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(sp.speech_s > 1.0 and sp.turns >= 1 and len(sp.centroid) == 256 for sp in speakers)
    assert tasks and all(t.done_at is not None for t in tasks)
    # One batch per segment under the test settings: several batches per kind ran in parallel.
    assert len({t.batch_idx for t in tasks}) >= 2 and len(tasks) == 3 * len({t.batch_idx for t in tasks})
    assert job.tasks_total == len(tasks)
    assert {t.kind for t in tasks} == {"asr", "embed", "emotion"}
    assert windows is not None


def test_sample_job_timings_split_each_stage(sample_job):
    """Every task stores where its time went (bench/stages.py reads these): the parts are there
    and add up to no more than their task's total (prepare's VAD runs beside its other parts)."""
    t = sample_job["timings"]
    for key in ("decode", "vad", "asr_model", "embed_model", "emotion_model", "clustering", "prepare", "reduce"):
        assert t[f"{key}_s"] >= 0 and t[f"{key}_cpu_s"] >= 0, key
    assert t["vad_s"] > 0 and t["asr_model_s"] > 0 and t["embed_model_s"] > 0
    # The VAD runs in a thread beside decoding and the S3 transfers; each side fits in prepare.
    prepare_parts = ("decode_s", "prepare_s3_read_s", "prepare_s3_write_s", "prepare_db_s")
    assert sum(t[k] for k in prepare_parts) <= t["prepare_s"] + 0.01
    assert t["vad_s"] <= t["prepare_s"] + 0.01
    for kind in ("asr", "embed", "emotion"):
        parts = t.get(f"{kind}_load_s", 0.0) + t.get(f"{kind}_fetch_s", 0.0) + t[f"{kind}_model_s"] + t[f"{kind}_db_s"]
        assert 0 < parts <= t[f"{kind}_s"] + 0.01, kind
    # The default emotion engine measures the voice (and reads the transcript): it fetches audio too.
    assert t["asr_fetch_s"] > 0 and t["embed_fetch_s"] > 0 and t["emotion_fetch_s"] > 0
    reduce_parts = ("reduce_db_s", "clustering_s", "assemble_s", "export_s")
    # Clustering runs in reduce, or earlier in diarize when the embeddings were in before the ASR.
    assert sum(t[k] for k in reduce_parts) <= t["reduce_s"] + t.get("diarize_s", 0.0) + 0.01
    assert 0 < t["reduce_s3_write_s"] <= t["export_s"]


@pytest.mark.parametrize("fmt", ["json", "srt", "vtt", "txt", "rttm"])
def test_sample_exports_download(sample_job, client, settings, fmt):
    body = client.transcript(sample_job["id"], fmt).decode("utf-8")
    stored = Storage(settings).get_bytes(out_key(sample_job["id"], fmt)).decode("utf-8")
    assert body == stored and body.strip()
    if fmt == "srt":
        assert "-->" in body and "[SPEAKER_0" in body
    if fmt == "vtt":
        assert body.startswith("WEBVTT")
    if fmt == "rttm":
        lines = [line.split() for line in body.splitlines()]
        assert all(parts[0] == "SPEAKER" and parts[1] == "sample" for parts in lines)
        assert {parts[7] for parts in lines} == {"SPEAKER_00", "SPEAKER_01"}


def test_sample_diarization_through_the_pipeline(sample_job, client, settings):
    """What reduce makes of the VAD probabilities prepare stored: the issue's DER goal (≤ 12 %,
    collar 0, overlap scored, count estimated) on the RTTM export, with overlapped turns in it."""
    assert Storage(settings).exists(vad_key(sample_job["id"]))
    hyp = read_rttm(client.transcript(sample_job["id"], "rttm").decode("utf-8"))
    parts = der_parts(read_rttm(SAMPLE.with_suffix(".rttm").read_text()), hyp)
    assert sum(parts.values()) <= 0.12, parts  # bench/sample_der.sh measured 10.7 %
    assert parts["missed"] < 0.078  # below the single-speaker floor: overlap is marked
    assert any(b[0] < a[1] and b[2] != a[2] for a, b in zip(hyp, hyp[1:]))


def test_early_diarization_is_what_reduce_takes(sample_job, settings, monkeypatch):
    """diarize (sent when a job's last embedding batch is in while ASR still runs) saves the
    clustering of exactly the rows reduce reads: reduce takes it, and it equals reduce's own."""
    from hark.storage import diarization_key
    from worker.resegment import diarize
    from worker.tasks import reduce as reduce_task

    jid = uuid.UUID(sample_job["id"])
    storage = Storage(settings)
    monkeypatch.setattr(reduce_task, "settings", lambda: settings)
    storage.delete_prefix(diarization_key(jid))
    with session_scope(settings.database_url) as s:
        s.get(Job, jid).status = "reducing"  # as when diarize runs; put back below
    try:
        reduce_task.diarize_early(str(jid))
        with session_scope(settings.database_url) as s:
            spans = [
                (g.start_s, g.end_s)
                for g in s.execute(select(Segment).where(Segment.job_id == jid).order_by(Segment.idx)).scalars()
            ]
            starts, ends, vectors = reduce_task._load_windows(s, jid)
            timings = s.get(Job, jid).timings
    finally:
        with session_scope(settings.database_url) as s:
            s.get(Job, jid).status = "done"
    assert storage.exists(diarization_key(jid)) and timings["diarize_s"] > 0
    monkeypatch.setattr(reduce_task, "diarize", lambda *a: pytest.fail("reduce clustered again"))
    taken = reduce_task._saved_or_diarize(storage, jid, spans, starts, ends, vectors, {})
    own = diarize(spans, starts, ends, vectors, reduce_task.cluster_options({}), reduce_task._speech(storage, jid))
    assert taken.turns == own.turns and taken.overlaps == own.overlaps and len(own.centroids) == 2


def test_other_tenant_cannot_see_the_job(sample_job, stack, settings):
    from hark.apikeys import create_key
    from hark.client import HarkClient

    with session_scope(settings.database_url) as s:
        other = create_key(s, "tenant-b")
    intruder = HarkClient(stack["url"], other)
    for call in (lambda: intruder.job(sample_job["id"]), lambda: intruder.transcript(sample_job["id"], "txt")):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 404


@pytest.mark.parametrize("fmt", ["flac", "mp3", "ogg", "m4a"])
def test_common_formats_decode_through_the_pipeline(client, tmp_path, fmt):
    """The same recording in each common format reaches done with the same duration and text."""
    samples, rate = read_wav(SAMPLE)
    path = encode(samples[: rate * 12], rate, tmp_path / f"clip.{fmt}", fmt)
    job = client.wait(client.submit(str(path))["id"], timeout_s=300)
    assert job["status"] == "done", job
    assert job["duration_s"] == pytest.approx(12.0, abs=0.1)
    doc = client.document(job["id"])
    assert "hello" in " ".join(u["text"] for u in doc["utterances"]).lower()


def test_results_for_segments_a_redelivered_prepare_replaced_are_dropped(settings, api_key, monkeypatch):
    """Prepare sends batches while it decodes; if it is redelivered, it replaces the job's segments
    and sends its own tasks. A task of the first attempt that finishes afterwards must store
    nothing and must not mark the new batch done; the same task on current segments does both."""
    from hark.models import JobTask, Tenant
    from hark.pcm_store import PcmWriter
    from worker.tasks import infer as infer_task

    monkeypatch.setattr(infer_task, "settings", lambda: settings)
    jid = uuid.uuid4()
    texts = ["I am so happy with this result", "this is terrible and sad"]
    with session_scope(settings.database_url) as s:
        tenant_id = s.scalar(select(Tenant.id).where(Tenant.name == "tenant-a"))
        s.add(Job(id=jid, tenant_id=tenant_id, status="preparing", filename="r.wav", source_key="raw/r", options={}))
        s.flush()
        s.add_all(
            Segment(job_id=jid, tenant_id=tenant_id, idx=i, start_s=1.0 + 3 * i, end_s=3.0 + 3 * i, text=t)
            for i, t in enumerate(texts)
        )
        s.add(JobTask(job_id=jid, batch_idx=0, kind="emotion", first_idx=0, last_idx=1, speech_s=4.0))
    writer = PcmWriter(Storage(settings), jid)
    writer.write(bytes(2 * 16000 * 10))
    writer.finish()

    def replace_segments() -> None:
        with session_scope(settings.database_url) as s:
            old = s.execute(select(Segment).where(Segment.job_id == jid).order_by(Segment.idx)).scalars().all()
            fresh = [
                Segment(job_id=jid, tenant_id=g.tenant_id, idx=g.idx, start_s=g.start_s, end_s=g.end_s, text=g.text)
                for g in old
            ]
            for g in old:
                s.delete(g)
            s.flush()
            s.add_all(fresh)

    real = infer_task.run_engine

    def redelivered_meanwhile(engine, batch, options):
        replace_segments()
        return real(engine, batch, options)

    def state() -> tuple[bool, list[str | None]]:
        with session_scope(settings.database_url) as s:
            done = s.get(JobTask, (jid, 0, "emotion")).done_at is not None
            emotions = s.scalars(select(Segment.emotion).where(Segment.job_id == jid).order_by(Segment.idx)).all()
        return done, list(emotions)

    try:
        monkeypatch.setattr(infer_task, "run_engine", redelivered_meanwhile)
        infer_task.infer.run(str(jid), 0, "emotion")
        assert state() == (False, [None, None])
        monkeypatch.setattr(infer_task, "run_engine", real)
        infer_task.infer.run(str(jid), 0, "emotion")
        done, emotions = state()
        assert done and all(emotions), emotions
    finally:
        Storage(settings).delete_prefix(f"pcm/{jid}.")
        with session_scope(settings.database_url) as s:
            s.delete(s.get(Job, jid))
