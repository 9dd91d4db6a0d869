"""A damaged recording through the real pipeline: an MP3 of the sample's first 20 s with a burst of
garbage in its middle (what used to fail the whole job as corrupt_audio) ends done; its damaged
stretch is reported, within ±0.5 s, in the job's status, its JSON export and analytics.meetings;
and the speech around it is transcribed as in the undamaged recording."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from hark.db import session_scope
from tests.audiofiles import encode, read_wav
from tests.unit.test_damaged_audio import TOLERANCE_S, damaged, hit_seconds

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _words(utterances: list[dict], keep) -> set[str]:  # type: ignore[no-untyped-def]
    return {
        w
        for u in utterances
        if keep(u["start"], u["end"])
        for w in re.findall(r"[a-z']+", u["text"].lower())
        if len(w) > 3
    }


def test_damaged_mp3_ends_done_with_its_damage_reported(client, settings, finished_job, tmp_path) -> None:
    samples, rate = read_wav(ROOT / "examples" / "sample.wav")
    clean = encode(samples[: 20 * rate], rate, tmp_path / "clean.mp3", "mp3").read_bytes()
    blob, a, b = damaged(clean, "garbage")
    lo, hi = hit_seconds(clean, a, b)
    path = tmp_path / "damaged.mp3"
    path.write_bytes(blob)

    job = client.wait(client.submit(str(path), force="true")["id"], timeout_s=300)
    assert job["status"] == "done", job
    [(start, end)] = job["damaged_ranges"]
    assert abs(start - lo) <= TOLERANCE_S and abs(end - hi) <= TOLERANCE_S, (job["damaged_ranges"], (lo, hi))
    assert job["damaged_s"] == pytest.approx(end - start, abs=0.01)
    assert job["duration_s"] == pytest.approx(20.0, abs=0.1)  # the damaged stretch is kept, as silence

    doc = json.loads(client.transcript(job["id"], "json"))
    assert doc["damaged_ranges"] == job["damaged_ranges"] and doc["damaged_s"] == job["damaged_s"]
    with session_scope(settings.database_url) as s:
        row = s.execute(
            text("SELECT damaged_s, damaged_ranges FROM analytics.meetings WHERE job_id = :j"),
            {"j": uuid.UUID(job["id"])},
        ).one()
        assert (row.damaged_s, row.damaged_ranges) == (job["damaged_s"], job["damaged_ranges"])
        undamaged = s.execute(
            text("SELECT damaged_s, damaged_ranges FROM analytics.meetings WHERE job_id = :j"),
            {"j": uuid.UUID(finished_job["id"])},
        ).one()
        assert (undamaged.damaged_s, undamaged.damaged_ranges) == (0, [])

    # The speech away from the damage is transcribed as in the undamaged recording (the sample's
    # run by the session), at the same times.
    reference = json.loads(client.transcript(finished_job["id"], "json"))["utterances"]
    clear = lambda u0, u1: u1 < start - 1.0 or (u0 > end + 1.0 and u1 < 19.0)  # noqa: E731
    expected = _words(reference, clear)
    got = _words(doc["utterances"], lambda u0, u1: True)
    assert len(expected) >= 10
    assert len(expected & got) >= 0.8 * len(expected), sorted(expected - got)
    assert job["error"] is None
