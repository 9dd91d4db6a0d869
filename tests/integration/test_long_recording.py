"""A 30-minute recording with generated speech islands (espeak-ng voices, known text, long
silences), in three containers, through the whole pipeline: every island must come back as one
segment at its true place, with no drift over half an hour of lossy decoding.

Takes about a minute and a half on two cores: the three prepares (VAD over 30 minutes each) run
one after another on the single CPU worker; the islands are only a few seconds each for ASR.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hark.db import session_scope
from hark.models import Job, JobTask, Segment
from tests.audiofiles import encode_blocks

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from islands import island_audio  # noqa: E402

pytestmark = pytest.mark.integration

MINUTES = 30
SPACING_S = 150.0
TOLERANCE_S = 0.5


@pytest.fixture(scope="module")
def islands_recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    paths, truth = {}, None
    for fmt in ("ogg", "m4a", "flac"):
        blocks, islands = island_audio(MINUTES * 60, SPACING_S, seed=7, noise=0.002)
        paths[fmt] = encode_blocks(blocks, 16000, folder / f"meeting.{fmt}", fmt)
        truth = islands
    return paths, truth


def test_half_hour_recording_segments_match_ground_truth(client, settings, islands_recordings):
    paths, islands = islands_recordings
    started = time.monotonic()
    streamed: dict[str, bool] = {}
    jobs = {fmt: client.submit(str(path))["id"] for fmt, path in paths.items()}
    for fmt, job_id in jobs.items():
        final = client.wait(job_id, timeout_s=900)
        assert final["status"] == "done", (fmt, final)
        assert final["duration_s"] == pytest.approx(MINUTES * 60, abs=0.1)
        assert final["progress"]["segments_done"] == final["progress"]["segments_total"]
        with session_scope(settings.database_url) as s:
            segments = s.execute(
                select(Segment.start_s, Segment.end_s, Segment.text)
                .where(Segment.job_id == uuid.UUID(job_id))
                .order_by(Segment.idx)
            ).all()
        assert len(segments) == len(islands), (fmt, [(round(a, 1), round(b, 1)) for a, b, _ in segments])
        for seg, island in zip(segments, islands):
            assert seg.start_s == pytest.approx(island.start, abs=TOLERANCE_S), (fmt, seg, island)
            assert seg.end_s == pytest.approx(island.end, abs=TOLERANCE_S), (fmt, seg, island)
        # The words are recognisable too: most islands share at least one word with their text.
        hits = sum(
            bool(set(island.text.lower().split()) & set((seg.text or "").lower().split()))
            for seg, island in zip(segments, islands)
        )
        assert hits >= len(islands) * 0.7, (fmt, hits)
        with session_scope(settings.database_url) as s:
            job = s.get(Job, uuid.UUID(job_id))
            first_task = s.scalar(select(func.min(JobTask.started_at)).where(JobTask.job_id == job.id))
            streamed[fmt] = first_task < job.started_at + timedelta(seconds=job.timings["prepare_s"])
            # Detected once (language: auto) and kept when prepare stored its own options at the
            # end; every segment was transcribed in it.
            assert job.options.get("detected_language") == "en" and "source_codec" in job.options, job.options
            languages = set(s.scalars(select(Segment.language).where(Segment.job_id == job.id)))
            assert languages == {"en"}, (fmt, languages)
    # Prepare sends each batch once its segments are final: the model work of a recording with
    # long pauses starts while it is still being decoded (the first job's at least; the later
    # ones' may wait behind it).
    assert streamed[next(iter(jobs))], streamed
    print(f"\n{len(jobs)} x {MINUTES} min through the pipeline in {time.monotonic() - started:.0f} s")
