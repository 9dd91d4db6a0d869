"""One language detection per job against the real database: ASR batches of one job asking at once
(several pool processes) wait for the first one's answer instead of each detecting, the detection
reads the first DETECT_S seconds of speech, and the answer is merged into the job's options beside
what others wrote there meanwhile."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from hark.db import session_scope
from hark.models import Job, Segment, Tenant
from tests.conftest import isolated_settings
from worker import language

pytestmark = pytest.mark.integration


def test_batches_asking_at_once_share_one_detection(base_settings, monkeypatch) -> None:
    with isolated_settings(base_settings) as cfg:
        jid = uuid.uuid4()
        with session_scope(cfg.database_url) as s:
            tenant = Tenant(id=uuid.uuid4(), name="language")
            s.add(tenant)
            s.flush()
            s.add(Job(id=jid, tenant_id=tenant.id, status="inferring", filename="x.wav", options={"language": "auto"}))
            s.flush()
            s.add_all(
                Segment(job_id=jid, tenant_id=tenant.id, idx=i, start_s=12.0 * i, end_s=12.0 * i + 10.0)
                for i in range(6)
            )

        heard: list[list[int]] = []

        def slow_detect(cfg_: Any, segments: list[Any]) -> str:
            heard.append([seg.idx for seg in segments])
            with session_scope(cfg.database_url) as s:  # prepare storing its own options meanwhile
                job = s.get(Job, jid, with_for_update=True)
                assert job is not None
                job.options = {**job.options, "source_codec": "opus"}
            time.sleep(0.5)
            return "de"

        monkeypatch.setattr(language, "detect", slow_detect)
        answers: list[str] = []
        askers = [
            threading.Thread(target=lambda: answers.append(language.recording_language(cfg, jid, lambda rows: rows)))
            for _ in range(3)
        ]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join(timeout=30)
        assert answers == ["de", "de", "de"]
        assert heard == [[0, 1, 2]]  # once, from the first 30 s of speech
        with session_scope(cfg.database_url) as s:
            job = s.get(Job, jid)
            assert job is not None
            assert job.options == {"language": "auto", "source_codec": "opus", "detected_language": "de"}
