"""A job whose options pick GigaAM for ASR and GigaAM-Emo for emotion, run by real Celery workers
(their settings point at tiny checkpoints in the real format, tests/gigaam_tiny.py) against the
real services: the segment rows in Postgres get the engines' text, words and acoustic emotion,
exactly what the engines give for the same audio in this process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hark.db import session_scope
from hark.models import JobTask, Segment
from hark.storage import Storage
from tests.conftest import own_stack
from tests.gigaam_tiny import EMOTIONS, write_checkpoint
from worker.engines.asr_gigaam import GigaAmCtcAsr
from worker.engines.emotion_gigaam import TO_HARK, GigaAmEmotion
from worker.tasks.infer import _load_batch

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"
ENGINES = {"asr": "gigaam-ctc", "emotion": "gigaam-emo", "embed": "resemblyzer"}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gigaam_stack(base_settings, tmp_path_factory) -> Iterator[dict]:
    """Web, a CPU worker and a model worker whose GigaAM model directories hold tiny checkpoints."""
    models = tmp_path_factory.mktemp("models")
    write_checkpoint(models / "gigaam-v2-ctc", "ctc")
    write_checkpoint(models / "gigaam-emo", "emo")
    overrides = {"gigaam_ctc_dir": str(models / "gigaam-v2-ctc"), "gigaam_emo_dir": str(models / "gigaam-emo")}
    with own_stack(base_settings, "gigaam", "tenant-gigaam", **overrides) as stack:
        yield stack


def test_gigaam_job_writes_text_and_acoustic_emotion_to_postgres(gigaam_stack) -> None:
    cfg, client = gigaam_stack["settings"], gigaam_stack["client"]
    job = client.wait(client.submit(str(SAMPLE), {"engines": ENGINES})["id"], timeout_s=300)
    assert job["status"] == "done", job
    jid = uuid.UUID(job["id"])
    with session_scope(cfg.database_url) as s:
        rows = s.execute(select(Segment).where(Segment.job_id == jid).order_by(Segment.idx)).scalars().all()
        kinds = set(s.scalars(select(JobTask.kind).where(JobTask.job_id == jid)))
    assert kinds == {"asr", "embed", "emotion"} and len(rows) >= 2
    # What the engines give for the same audio, loaded as the worker loads it, in this process.
    asr, emo = GigaAmCtcAsr(), GigaAmEmotion()
    asr.load(cfg)
    emo.load(cfg)
    audio = _load_batch(Storage(cfg), jid, rows)
    expected_text = {r.segment_id: r for r in asr.run(audio)}
    expected_emotion = {r.segment_id: r for r in emo.run(audio)}
    assert len({g.text for g in rows}) > 1
    for g in rows:
        assert g.language == "ru" and g.text is not None and g.errors is None
        assert g.text == expected_text[g.id].text
        assert g.words == expected_text[g.id].words
        assert all(g.start_s <= w["start"] <= w["end"] <= g.end_s + 1e-6 for w in g.words)
        assert g.emotion_source == "acoustic:gigaam-emo"
        assert set(g.emotion_scores) == set(EMOTIONS)  # JSONB keeps its own key order
        assert g.emotion_scores == pytest.approx(expected_emotion[g.id].emotion_scores, abs=2e-4)
        assert g.emotion == TO_HARK[max(g.emotion_scores, key=lambda k: g.emotion_scores[k])]
        assert g.speaker is not None
    doc = client.document(job["id"])
    assert doc["utterances"] and all(u["emotion_source"] == "acoustic:gigaam-emo" for u in doc["utterances"])
