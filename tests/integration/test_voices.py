"""Voices end to end: enroll a person from the sample's real pipeline run, run the sample again
and see the person named by reduce (API, exports, analytics as the read-only role), correct a
speaker by hand, search the archive by voice, rename and delete (every vector goes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests
from sqlalchemy import func, select, text

from hark.db import session_scope
from hark.models import Job, Speaker, VoiceSample
from hark.sqlroles import connection_url, create_role, drop_role
from hark.voice_search import PGVECTOR_SQL, SpeakerIndex
from worker.voices import THRESHOLD, match_speakers

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def h(api_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="module")
def alice(stack, h, finished_job) -> Iterator[dict]:
    """SPEAKER_00 of the sample enrolled as Alice; deleted afterwards, so later jobs of the
    session are not named."""
    url = stack["url"]
    resp = requests.post(
        f"{url}/v1/voices",
        headers=h,
        json={"name": "Alice", "job_id": finished_job["id"], "speaker": "SPEAKER_00"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    voice = resp.json()
    yield voice
    for v in requests.get(f"{url}/v1/voices", headers=h, timeout=30).json()["voices"]:
        requests.delete(f"{url}/v1/voices/{v['id']}", headers=h, timeout=30)


@pytest.fixture(scope="module")
def second_run(stack, h, client, alice) -> dict:
    """The sample again, through the whole pipeline, after Alice was enrolled."""
    with (ROOT / "examples" / "sample.wav").open("rb") as f:
        resp = requests.post(
            f"{stack['url']}/v1/jobs",
            headers=h,
            files={"file": ("again.wav", f, "audio/wav")},
            data={"force": "true"},
            timeout=120,
        )
    assert resp.status_code == 201, resp.text
    job = client.wait(resp.json()["id"], timeout_s=300)
    assert job["status"] == "done", job
    return job


def test_enroll_combine_rename_and_errors(stack, h, finished_job, alice):
    url = stack["url"]
    assert alice["name"] == "Alice" and alice["samples"] == 1 and alice["dims"] == [256]
    # The same name again: a second sample of the same person, not a second person.
    again = requests.post(
        f"{url}/v1/voices", headers=h, json={"name": "Alice", "job_id": finished_job["id"], "speaker": "SPEAKER_00"}
    )
    assert again.status_code == 200 and again.json()["id"] == alice["id"] and again.json()["samples"] == 2
    for body, code in (
        ({"name": "X", "job_id": finished_job["id"], "speaker": "SPEAKER_09"}, "speaker_not_found"),
        ({"name": "X", "job_id": str(uuid.uuid4()), "speaker": "SPEAKER_00"}, "job_not_found"),
        ({"name": " ", "job_id": finished_job["id"], "speaker": "SPEAKER_00"}, "invalid_body"),
        ({"name": "X", "job_id": "nope", "speaker": "SPEAKER_00"}, "invalid_body"),
        ({"name": "X", "job_id": finished_job["id"], "speaker": "SPEAKER_00", "extra": 1}, "invalid_body"),
    ):
        resp = requests.post(f"{url}/v1/voices", headers=h, json=body, timeout=30)
        assert resp.status_code in (400, 404) and resp.json()["error"]["code"] == code, body
    bob = requests.post(
        f"{url}/v1/voices", headers=h, json={"name": "Bob", "job_id": finished_job["id"], "speaker": "SPEAKER_01"}
    ).json()
    taken = requests.patch(f"{url}/v1/voices/{bob['id']}", headers=h, json={"name": "Alice"}, timeout=30)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "voice_name_taken"
    renamed = requests.patch(f"{url}/v1/voices/{bob['id']}", headers=h, json={"name": "Robert"}, timeout=30)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Robert"
    listed = requests.get(f"{url}/v1/voices", headers=h, timeout=30).json()["voices"]
    assert [v["name"] for v in listed] == ["Alice", "Robert"]
    assert requests.delete(f"{url}/v1/voices/{bob['id']}", headers=h, timeout=30).status_code == 204
    assert requests.get(f"{url}/v1/voices/{bob['id']}", headers=h, timeout=30).status_code == 404


def test_reduce_names_the_enrolled_person(stack, h, client, alice, second_run, settings):
    url, jid = stack["url"], second_run["id"]
    speakers = requests.get(f"{url}/v1/jobs/{jid}/speakers", headers=h, timeout=30).json()
    assert speakers["threshold"] == THRESHOLD
    by_label = {sp["label"]: sp for sp in speakers["speakers"]}
    assert by_label["SPEAKER_00"]["person"] == "Alice" and by_label["SPEAKER_00"]["person_source"] == "match"
    assert by_label["SPEAKER_00"]["person_score"] >= THRESHOLD
    # Only one speaker can be Alice; the other stays anonymous.
    assert by_label["SPEAKER_01"]["person"] is None and by_label["SPEAKER_01"]["person_score"] is None
    doc = client.document(jid)
    assert {sp["label"]: sp["person"] for sp in doc["speakers"]} == {"SPEAKER_00": "Alice", "SPEAKER_01": None}
    assert all(u["person"] == ("Alice" if u["speaker"] == "SPEAKER_00" else None) for u in doc["utterances"])
    txt = client.transcript(jid, "txt").decode()
    assert "Alice:" in txt and "SPEAKER_01:" in txt and "SPEAKER_00:" not in txt
    # Nobody below the threshold: with an unreachable threshold nothing is named.
    with session_scope(settings.database_url) as s:
        job = s.get(Job, uuid.UUID(jid))
        centroids = {
            sp.label: np.asarray(sp.centroid) for sp in s.scalars(select(Speaker).where(Speaker.job_id == job.id))
        }
        assert match_speakers(s, job.tenant_id, job.id, centroids, configured=1.01) == {}


def test_correction_sticks_teaches_and_reexports(stack, h, client, alice, second_run, settings):
    url, jid = stack["url"], second_run["id"]
    resp = requests.patch(f"{url}/v1/jobs/{jid}/speakers/SPEAKER_01", headers=h, json={"name": "Carol"}, timeout=30)
    assert resp.status_code == 200, resp.text
    by_label = {sp["label"]: sp for sp in resp.json()["speakers"]}
    assert by_label["SPEAKER_01"]["person"] == "Carol" and by_label["SPEAKER_01"]["person_source"] == "manual"
    assert "Carol:" in client.transcript(jid, "txt").decode()
    carol = next(v for v in requests.get(f"{url}/v1/voices", headers=h).json()["voices"] if v["name"] == "Carol")
    assert carol["samples"] == 1  # the correction is a sample of the voice
    # A later reduce of the job (matching again) keeps the correction.
    with session_scope(settings.database_url) as s:
        job = s.get(Job, uuid.UUID(jid))
        centroids = {
            sp.label: np.asarray(sp.centroid) for sp in s.scalars(select(Speaker).where(Speaker.job_id == job.id))
        }
        found = match_speakers(s, job.tenant_id, job.id, centroids)
    assert str(found["SPEAKER_01"].voice_id) == carol["id"] and found["SPEAKER_01"].source == "manual"
    assert str(found["SPEAKER_00"].voice_id) == alice["id"] and found["SPEAKER_00"].source == "match"
    bad = requests.patch(f"{url}/v1/jobs/{jid}/speakers/SPEAKER_01", headers=h, json={"voice_id": "x"}, timeout=30)
    assert bad.status_code == 400


def test_search_by_voice_and_similar_speakers(stack, h, alice, second_run, finished_job):
    url = stack["url"]
    found = requests.get(f"{url}/v1/voices/{alice['id']}/meetings", headers=h, timeout=30).json()
    assert found["method"] == "in-process"
    # Other runs of the same sample in this session score the same; these two must be there.
    hits = {r["job_id"]: r for r in found["results"]}
    for jid in (finished_job["id"], second_run["id"]):
        assert hits[jid]["speaker"] == "SPEAKER_00" and hits[jid]["above_threshold"], hits.get(jid)
    assert [r["score"] for r in found["results"]] == sorted((r["score"] for r in found["results"]), reverse=True)
    similar = requests.get(
        f"{url}/v1/jobs/{second_run['id']}/speakers/SPEAKER_01/similar", headers=h, params={"limit": 5}, timeout=30
    ).json()
    hits = {r["job_id"]: r for r in similar["results"]}
    assert second_run["id"] not in hits and similar["results"][0]["score"] > 0.99
    similar = requests.get(
        f"{url}/v1/jobs/{second_run['id']}/speakers/SPEAKER_01/similar", headers=h, params={"limit": 100}, timeout=30
    ).json()
    assert {r["job_id"]: r["speaker"] for r in similar["results"]}[finished_job["id"]] == "SPEAKER_01"
    assert requests.get(f"{url}/v1/voices/{alice['id']}/meetings?limit=0", headers=h).status_code == 400


def test_analytics_views_show_the_person(settings, alice, second_run):
    """docs/sql.md's people query as the tenant's read-only role."""
    import re

    query = next(
        q
        for q in re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "sql.md").read_text(), re.S)
        if "person IS NOT NULL" in q and "speaker_talk_time" in q
    )
    with session_scope(settings.database_url) as s:
        role, password = create_role(s, "tenant-a", f"hark_ro_voices_{uuid.uuid4().hex[:6]}")
    try:
        with psycopg.connect(
            connection_url(settings.database_url, role, password), row_factory=psycopg.rows.dict_row
        ) as c:
            rows = c.execute(query).fetchall()
            segs = c.execute(
                "SELECT DISTINCT speaker, person FROM analytics.segments WHERE job_id = %s", (second_run["id"],)
            ).fetchall()
    finally:
        with session_scope(settings.database_url) as s:
            drop_role(s, role)
    alice_row = next(r for r in rows if r["person"] == "Alice")
    assert alice_row["meetings"] >= 1 and float(alice_row["speech_s"]) > 0
    assert {(r["speaker"], r["person"]) for r in segs} >= {("SPEAKER_00", "Alice")}


def test_delete_voice_removes_every_vector(stack, h, finished_job, settings):
    url = stack["url"]
    voice = requests.post(
        f"{url}/v1/voices", headers=h, json={"name": "Dora", "job_id": finished_job["id"], "speaker": "SPEAKER_01"}
    ).json()
    requests.post(
        f"{url}/v1/voices/{voice['id']}/samples",
        headers=h,
        json={"job_id": finished_job["id"], "speaker": "SPEAKER_01"},
    )
    with session_scope(settings.database_url) as s:
        assert (
            s.scalar(
                select(func.count()).select_from(VoiceSample).where(VoiceSample.voice_id == uuid.UUID(voice["id"]))
            )
            == 2
        )
    assert requests.delete(f"{url}/v1/voices/{voice['id']}", headers=h, timeout=30).status_code == 204
    with session_scope(settings.database_url) as s:
        assert (
            s.scalar(
                select(func.count()).select_from(VoiceSample).where(VoiceSample.voice_id == uuid.UUID(voice["id"]))
            )
            == 0
        )
        assert (
            s.scalar(select(func.count()).select_from(Speaker).where(Speaker.person_id == uuid.UUID(voice["id"]))) == 0
        )


def test_pgvector_sql_ranks_as_the_fallback(settings, finished_job, second_run, alice):
    """The pgvector query, run on this server (no pgvector) against a stand-in `vector` type with
    the same cosine-distance operator, returns what the in-process index returns."""
    with session_scope(settings.database_url) as s:
        s.execute(text("CREATE SCHEMA IF NOT EXISTS pgvector_stand_in"))
        s.execute(text("DROP DOMAIN IF EXISTS pgvector_stand_in.vector CASCADE"))
        s.execute(text("CREATE DOMAIN pgvector_stand_in.vector AS real[]"))
        s.execute(
            text(
                "CREATE FUNCTION pgvector_stand_in.cosine_distance(a real[], b real[]) RETURNS double precision"
                " LANGUAGE sql IMMUTABLE AS $$ SELECT 1 - sum(x * y) / (sqrt(sum(x * x)) * sqrt(sum(y * y)))"
                " FROM unnest(a, b) AS t(x, y) $$"
            )
        )
        s.execute(
            text(
                "CREATE OPERATOR pgvector_stand_in.<=> (LEFTARG = real[], RIGHTARG = real[],"
                " FUNCTION = pgvector_stand_in.cosine_distance)"
            )
        )
    try:
        with session_scope(settings.database_url) as s:
            job = s.get(Job, uuid.UUID(second_run["id"]))
            q = np.asarray(
                s.scalar(select(Speaker.centroid).where(Speaker.job_id == job.id, Speaker.label == "SPEAKER_00"))
            )
            s.execute(text("SET LOCAL search_path = pgvector_stand_in, public"))
            rows = s.execute(
                text(PGVECTOR_SQL),
                {"q": [float(x) for x in q], "tenant": job.tenant_id, "dim": len(q), "exclude": job.id, "k": 100},
            ).all()
        with session_scope(settings.database_url) as s:
            hits = SpeakerIndex().search(s, job.tenant_id, q, 100, exclude=job.id)
        by_sql = {r[0]: (r[1], float(r[2])) for r in rows}
        assert set(by_sql) == {h.job_id for h in hits} and uuid.UUID(finished_job["id"]) in by_sql
        for hit in hits:
            assert by_sql[hit.job_id][0] == hit.label and by_sql[hit.job_id][1] == pytest.approx(hit.score, abs=1e-4)
    finally:
        with session_scope(settings.database_url) as s:
            s.execute(text("DROP SCHEMA pgvector_stand_in CASCADE"))


def test_enroll_from_reference_audio(stack, h, client, alice):
    """Reference audio runs as a job; when it is done its main speaker is the person's sample."""
    url = stack["url"]
    with (ROOT / "examples" / "sample.wav").open("rb") as f:
        resp = requests.post(
            f"{url}/v1/voices",
            headers=h,
            params={"name": "Erin"},
            files={"file": ("erin.wav", f)},
            data={"force": "true"},
            timeout=120,
        )
    assert resp.status_code == 202, resp.text
    assert resp.json()["options"]["enroll"] == "Erin"
    job = client.wait(resp.json()["id"], timeout_s=300)
    assert job["status"] == "done", job
    erin = next(v for v in requests.get(f"{url}/v1/voices", headers=h).json()["voices"] if v["name"] == "Erin")
    assert erin["samples"] == 1 and erin["dims"] == [256]
    speakers = requests.get(f"{url}/v1/jobs/{job['id']}/speakers", headers=h, timeout=30).json()["speakers"]
    main = max(speakers, key=lambda sp: sp["speech_s"])
    assert main["person"] == "Erin" and main["person_source"] == "manual"
    nameless = requests.post(f"{url}/v1/voices", headers=h, files={"file": ("x.wav", b"RIFF")}, timeout=30)
    assert nameless.status_code == 400 and nameless.json()["error"]["code"] == "invalid_body"
