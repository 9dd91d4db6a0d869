"""Conversation analytics: a meeting with known turns (one real interruption with two seconds of
overlap, pauses, questions) checked figure by figure through docs/sql.md's queries as the tenant's
read-only role, the per-person view, GET /v1/stats/conversation, and another tenant seeing none of
it; and reduce storing a real job's turns."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import select

from hark.db import session_scope
from hark.models import Job, Segment, Speaker, SpeakerTurn, Tenant, Voice
from hark.sqlroles import connection_url, create_role, drop_role

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

A, B = "SPEAKER_00", "SPEAKER_01"
# (speaker, start, end, overlap): A's pause of 0.3 s keeps one stretch; B starts inside A's second
# turn and outlasts it (an interruption, 2 s of overlap); the overlap-marked turn is the
# diarizer's heuristic and must not count.
TURNS = [
    (A, 0.0, 10.0, False),
    (A, 10.3, 14.0, False),
    (B, 12.0, 20.0, False),
    (A, 19.85, 20.0, True),
    (A, 21.0, 25.0, False),
    (B, 26.0, 27.0, False),
]


@pytest.fixture(scope="module")
def meeting(settings, api_key, other_key) -> Iterator[uuid.UUID]:
    with session_scope(settings.database_url) as s:
        tenant = s.scalar(select(Tenant).where(Tenant.name == "tenant-a"))
        jid = uuid.uuid4()
        s.add(Job(id=jid, tenant_id=tenant.id, status="done", filename="talk.wav", duration_s=27.0, options={}))
        voice = Voice(tenant_id=tenant.id, name=f"Zed {jid.hex[:6]}")
        s.add(voice)
        s.flush()
        s.add_all(
            SpeakerTurn(job_id=jid, tenant_id=tenant.id, speaker=sp, start_s=a, end_s=b, overlap=o)
            for sp, a, b, o in TURNS
        )
        s.add(
            Segment(
                job_id=jid,
                tenant_id=tenant.id,
                idx=0,
                start_s=0.0,
                end_s=14.0,
                speaker=A,
                text="Hello there. How are you? Fine?",
            )
        )
        s.add(
            Segment(
                job_id=jid,
                tenant_id=tenant.id,
                idx=1,
                start_s=14.0,
                end_s=20.0,
                speaker=B,
                text="yes we can",
                words=[{"start": 14.0, "end": 14.5, "word": w, "p": 1.0} for w in ("yes", "we", "can", "now")],
            )
        )
        s.add(Speaker(job_id=jid, tenant_id=tenant.id, label=A, speech_s=18.0, turns=3, person_id=voice.id))
        s.add(Speaker(job_id=jid, tenant_id=tenant.id, label=B, speech_s=9.0, turns=2))
        name = voice.name
    yield jid, name
    with session_scope(settings.database_url) as s:
        s.delete(s.get(Job, jid))
        s.delete(s.scalar(select(Voice).where(Voice.name == name)))


def _queries() -> list[str]:
    found = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "sql.md").read_text(), re.S)
    return [q for q in found if "conversation" in q]


def test_conversation_figures_as_the_read_only_role(settings, meeting):
    jid, person = meeting
    per_meeting, per_person = _queries()
    roles = {}
    with session_scope(settings.database_url) as s:
        for tenant in ("tenant-a", "tenant-b"):
            role, password = create_role(s, tenant, f"hark_ro_conv_{uuid.uuid4().hex[:6]}")
            roles[tenant] = (role, connection_url(settings.database_url, role, password))
    try:
        with psycopg.connect(roles["tenant-a"][1], row_factory=psycopg.rows.dict_row) as c:
            rows = {r["speaker"]: r for r in c.execute(per_meeting).fetchall() if r["job_id"] == jid}
            people = {r["person"]: r for r in c.execute(per_person).fetchall()}
            voices_a = {r["name"]: r for r in c.execute("SELECT name, meetings FROM analytics.voices").fetchall()}
        with psycopg.connect(roles["tenant-b"][1], row_factory=psycopg.rows.dict_row) as c:
            assert all(r["job_id"] != jid for r in c.execute(per_meeting).fetchall())
            assert person not in {r["person"] for r in c.execute(per_person).fetchall()}
            assert person not in {r["name"] for r in c.execute("SELECT name FROM analytics.voices").fetchall()}
    finally:
        with session_scope(settings.database_url) as s:
            for role, _ in roles.values():
                drop_role(s, role)
    a, b = rows[A], rows[B]
    assert (a["interruptions_made"], a["interruptions_suffered"]) == (0, 1)
    assert (b["interruptions_made"], b["interruptions_suffered"]) == (1, 0)
    assert float(a["overlap_s"]) == pytest.approx(2.0) and float(b["overlap_s"]) == pytest.approx(2.0)
    assert float(a["longest_monologue_s"]) == pytest.approx(14.0)  # 0–14 s across the short pause
    assert float(b["longest_monologue_s"]) == pytest.approx(8.0)
    assert a["questions"] == 2 and b["questions"] == 0
    assert float(a["wpm"]) == round(6 * 60 / 14)  # words counted from the text
    assert float(b["wpm"]) == round(4 * 60 / 6)  # words from the word timings
    assert float(a["median_response_gap_s"]) == pytest.approx(1.0)  # 21 s after B's 20 s
    assert float(b["median_response_gap_s"]) == pytest.approx(-0.5)  # median of −2 (over A) and 1
    assert a["person"] == person and b["person"] is None
    assert voices_a[person]["meetings"] == 1
    zed = people[person]
    assert zed["meetings"] == 1 and zed["interruptions_suffered"] == 1 and float(zed["longest_monologue_s"]) == 14.0


def test_stats_api_conversation(stack, api_key, other_key, meeting):
    jid, person = meeting
    url = stack["url"]
    rows = requests.get(
        f"{url}/v1/stats/conversation",
        params={"job_id": str(jid)},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ).json()["rows"]
    assert {(r["speaker"], r["interruptions_made"], r["person"]) for r in rows} == {(A, 0, person), (B, 1, None)}
    by_person = requests.get(
        f"{url}/v1/stats/conversation", params={"by": "person"}, headers={"Authorization": f"Bearer {api_key}"}
    ).json()["rows"]
    assert any(r["person"] == person and r["meetings"] == 1 for r in by_person)
    other = requests.get(
        f"{url}/v1/stats/conversation", params={"job_id": str(jid)}, headers={"Authorization": f"Bearer {other_key}"}
    ).json()["rows"]
    assert other == []
    bad = requests.get(f"{url}/v1/stats/conversation?by=room", headers={"Authorization": f"Bearer {api_key}"})
    assert bad.status_code == 400


def test_reduce_stores_the_turns(settings, finished_job, client):
    """The sample's real run: its stored turns are the export's turns, the heuristic overlaps marked."""
    doc = client.document(finished_job["id"])
    with session_scope(settings.database_url) as s:
        stored = s.execute(
            select(SpeakerTurn.speaker, SpeakerTurn.start_s, SpeakerTurn.end_s, SpeakerTurn.overlap).where(
                SpeakerTurn.job_id == uuid.UUID(finished_job["id"])
            )
        ).all()
    assert sorted((sp, a, b) for sp, a, b, _ in stored) == sorted(
        (t["speaker"], t["start"], t["end"]) for t in doc["turns"]
    )
    plain = sorted((a, b) for _, a, b, o in stored if not o)
    assert all(b1 <= a2 + 1e-6 for (_, b1), (a2, _) in zip(plain, plain[1:]))  # single-speaker turns never overlap
