"""SenseVoice as a deployment's ASR engine, for real: a Celery model worker loads a tiny SenseVoice
checkpoint in the published format (tests/funasr_checkpoints.py) from HARK_SENSEVOICE_DIR, runs a
job uploaded over HTTP, and the segment rows in Postgres get language, emotion (with its scores and
`emotion_source`) and audio events from the same pass, with no emotion task planned at all. A
worker whose model directory is missing refuses to start, naming the path."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hark.db import session_scope
from hark.models import Job, JobTask, Segment
from hark.storage import Storage
from tests.conftest import celery_cmd, own_stack
from tests.funasr_checkpoints import build_sensevoice

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"
SOURCE = "acoustic:sensevoice-small"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sensevoice_stack(base_settings, tmp_path_factory) -> Iterator[dict]:
    model = build_sensevoice(tmp_path_factory.mktemp("models") / "SenseVoiceSmall")
    with own_stack(
        base_settings,
        "sv",
        "tenant-sv",
        asr_engine="sensevoice-small",
        sensevoice_dir=str(model),
        max_segment_s=6.0,
        merge_length_s=4.0,
        batch_speech_s=6.0,
    ) as stack:
        yield stack


def test_sensevoice_job_stores_language_emotion_and_events(sensevoice_stack) -> None:
    cfg, client = sensevoice_stack["settings"], sensevoice_stack["client"]
    job = client.wait(client.submit(str(SAMPLE))["id"], timeout_s=300)
    assert job["status"] == "done", job
    jid = uuid.UUID(job["id"])
    with session_scope(cfg.database_url) as s:
        kinds = {k for (k,) in s.execute(select(JobTask.kind).where(JobTask.job_id == jid))}
        assert kinds == {"asr", "embed"}, "an emotion task was planned although SenseVoice gives emotion"
        batches = s.execute(
            select(JobTask.first_idx, JobTask.last_idx)
            .where(JobTask.job_id == jid, JobTask.kind == "asr")
            .order_by(JobTask.batch_idx)
        ).all()
        row = s.get(Job, jid)
        assert row is not None and row.tasks_total == 2 * len(batches) and len(batches) > 1
        segments = s.execute(select(Segment).where(Segment.job_id == jid).order_by(Segment.idx)).scalars().all()
        s.expunge_all()
    assert segments
    for g in segments:
        assert g.text is not None and g.language is not None and g.events is not None
        assert g.emotion_source == SOURCE
        assert set(g.emotion_scores) == {"happy", "sad", "angry", "neutral", "fearful", "disgusted", "surprised"}
    assert any(g.emotion for g in segments) and any(g.events for g in segments)

    # Each row holds exactly what the engine answers for that segment, batched as the task batched it.
    from worker.engines.asr_sensevoice import SenseVoiceAsr
    from worker.tasks.infer import _load_batch

    engine = SenseVoiceAsr()
    engine.load(cfg)
    by_idx = {g.idx: g for g in segments}
    for first, last in batches:
        rows = [by_idx[i] for i in range(first, last + 1)]
        for g, r in zip(rows, engine.run(_load_batch(Storage(cfg), jid, rows))):
            assert (g.text, g.language, g.emotion, g.events) == (r.text, r.language, r.emotion, r.events)
            assert g.emotion_scores == pytest.approx(r.emotion_scores, abs=1e-3)

    # Analysts see the acoustic source in the emotion statistics.
    stats = client._json("GET", f"/v1/stats/emotions?job_id={job['id']}")
    assert stats["rows"] and {r["emotion_source"] for r in stats["rows"]} == {SOURCE}


def test_worker_with_missing_model_dir_refuses_to_start(sensevoice_stack, tmp_path) -> None:
    missing = tmp_path / "SenseVoiceSmall"
    env = {**sensevoice_stack["env"], "HARK_SENSEVOICE_DIR": str(missing)}
    proc = subprocess.run(
        celery_cmd("sv-broken", "asr"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert f"model directory {missing} (HARK_SENSEVOICE_DIR) does not exist" in proc.stderr + proc.stdout
    assert "ready." not in proc.stderr + proc.stdout
