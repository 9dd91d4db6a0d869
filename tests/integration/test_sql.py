"""Analysts' SQL: docs/sql.md's queries run as a tenant's read-only role against real pipeline
output; the role sees only its tenant and no table; the stats API gives the views' numbers."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests
from sqlalchemy import select, text

from hark.db import session_scope
from hark.models import Job, Segment, Speaker, Tenant
from hark.sqlroles import connection_url, create_role, drop_role
from worker.affect import SegmentMeasures, assess

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def readme_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "sql.md").read_text(), re.S)


@pytest.fixture(scope="module")
def other_tenant_rows(settings, other_key):
    """A finished job of tenant-b, written as rows, so the views have another tenant to hide."""
    with session_scope(settings.database_url) as s:
        tenant = s.scalar(select(Tenant).where(Tenant.name == "tenant-b"))
        jid = uuid.uuid4()
        s.add(
            Job(id=jid, tenant_id=tenant.id, status="done", filename="b.wav", duration_s=10.0, options={}, timings={})
        )
        s.flush()
        s.add(
            Segment(
                job_id=jid,
                tenant_id=tenant.id,
                idx=0,
                start_s=0.0,
                end_s=4.0,
                speaker="SPEAKER_00",
                text="secret chicago plans of tenant b",
                emotion="angry",
                emotion_source="prosody+text",
                prosody={"f0_median_hz": 180.0, "intensity_db": 70.0, "loudness_db": 0.0, "speaking_rate": 9.9},
                valence=-0.9,
                arousal=3.0,
                heated=True,
            )
        )
        s.add(Speaker(job_id=jid, tenant_id=tenant.id, label="SPEAKER_00", speech_s=4.0, turns=1))
    return jid


@pytest.fixture(scope="module")
def measured_meeting(settings):
    """A finished tenant-a meeting from two weeks ago, written as rows the way reduce writes them:
    one speaker's ten ordinary segments and an eleventh louder, faster and higher, their arousal,
    heated flag and label from worker/affect.py. Removed afterwards."""
    wobble = (-1, 0, 1, 0, -1, 1, 0, 1, -1, 0)
    measures = [
        SegmentMeasures(
            "SPEAKER_00",
            {"f0_median_hz": 120 * (1 + 0.02 * w), "intensity_db": 62.0 + w, "speaking_rate": 4.0 + 0.2 * w},
            0.1 * w,
        )
        for w in wobble
    ]
    measures.append(
        SegmentMeasures("SPEAKER_00", {"f0_median_hz": 150, "intensity_db": 70, "speaking_rate": 5.6}, -0.7)
    )
    with session_scope(settings.database_url) as s:
        tenant = s.scalar(select(Tenant).where(Tenant.name == "tenant-a"))
        jid = uuid.uuid4()
        created = datetime.now(UTC) - timedelta(days=14)
        s.add(Job(id=jid, tenant_id=tenant.id, status="done", filename="m.wav", duration_s=60.0, created_at=created))
        s.flush()
        for i, (m, a) in enumerate(zip(measures, assess(measures), strict=True)):
            s.add(
                Segment(
                    job_id=jid,
                    tenant_id=tenant.id,
                    idx=i,
                    start_s=5.0 * i,
                    end_s=5.0 * i + 4.0,
                    speaker=m.speaker,
                    text="this is an outrage" if i == 10 else "the figures for the quarter",
                    emotion=a.emotion,
                    emotion_source="prosody+text",
                    prosody={**m.prosody, "loudness_db": a.loudness_db},
                    valence=m.valence,
                    arousal=a.arousal,
                    heated=a.heated,
                )
            )
    yield jid
    with session_scope(settings.database_url) as s:
        s.delete(s.get(Job, jid))


@pytest.fixture(scope="module")
def roles(settings, finished_job, other_tenant_rows):
    tag = uuid.uuid4().hex[:6]
    made = {}
    with session_scope(settings.database_url) as s:
        for tenant in ("tenant-a", "tenant-b"):
            role, password = create_role(s, tenant, f"hark_ro_test_{tag}_{tenant[-1]}")
            made[tenant] = connection_url(settings.database_url, role, password)
    yield made
    with session_scope(settings.database_url) as s:
        for url in made.values():
            drop_role(s, url.split("//")[1].split(":")[0])


def as_role(url: str, sql: str) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(sql).fetchall()


def test_readme_has_enough_queries():
    assert len(readme_queries()) >= 9


def test_role_sees_only_its_tenant_and_no_tables(roles, finished_job, other_tenant_rows):
    a, b = roles["tenant-a"], roles["tenant-b"]
    for view in ("meetings", "speaker_talk_time", "speaker_emotions", "segments", "speaker_baselines"):
        a_jobs = {str(r["job_id"]) for r in as_role(a, f"SELECT job_id FROM analytics.{view}")}
        b_jobs = {str(r["job_id"]) for r in as_role(b, f"SELECT job_id FROM analytics.{view}")}
        assert finished_job["id"] in a_jobs and str(other_tenant_rows) not in a_jobs, view
        assert b_jobs == {str(other_tenant_rows)}, view
    for table in ("public.segments", "public.jobs", "public.api_keys", "public.sql_roles", "public.tenants"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(a, f"SELECT * FROM {table}")
    with pytest.raises(psycopg.Error):
        as_role(a, "DELETE FROM analytics.segments")


def test_readme_queries_match_the_pipeline(roles, finished_job, client, settings):
    """Run every docs/sql.md query as tenant-a's role and check it against the API and the rows."""
    url, jid = roles["tenant-a"], finished_job["id"]
    queries = readme_queries()[:6]
    # The meetings example lists the latest 20; the session's first job must be among the rows.
    queries[0] = queries[0].replace("LIMIT 20", "LIMIT 100000")
    meetings, talk, emotions, weekly, chicago, sources = (as_role(url, q) for q in queries)
    doc = client.document(jid)
    with session_scope(settings.database_url) as s:
        tenant_id = s.get(Job, uuid.UUID(jid)).tenant_id
        segs = s.scalars(select(Segment).join(Job).where(Job.tenant_id == tenant_id, Job.status == "done")).all()
        mine = [g for g in segs if str(g.job_id) == jid]

    meeting = next(m for m in meetings if str(m["job_id"]) == jid)
    assert meeting["speakers"] == len(doc["speakers"]) == 2
    assert float(meeting["duration_s"]) == pytest.approx(finished_job["duration_s"], abs=0.05)
    assert set(meeting["talk_share"]) == {sp["label"] for sp in doc["speakers"]}
    assert sum(meeting["talk_share"].values()) == pytest.approx(1.0, abs=1e-3)
    by_emotion: dict[str, float] = defaultdict(float)
    for g in mine:
        by_emotion[g.emotion] += g.end_s - g.start_s
    assert meeting["dominant_emotion"] == max(sorted(by_emotion), key=by_emotion.__getitem__)
    assert meeting["emotion_source"] == "prosody+text"
    assert meeting["languages"] == doc["languages"] == ["en"]

    api_speakers = {sp["label"]: sp for sp in doc["speakers"]}
    rows = [r for r in talk if str(r["job_id"]) == jid]
    assert {r["speaker"] for r in rows} == set(api_speakers)
    for r in rows:
        assert float(r["speech_s"]) == pytest.approx(api_speakers[r["speaker"]]["speech_s"], abs=0.06)
    assert sum(float(r["percent"]) for r in rows) == pytest.approx(100.0, abs=0.2)

    per_speaker: dict[tuple[str, str], float] = defaultdict(float)
    for g in mine:
        per_speaker[(g.speaker, g.emotion)] += g.end_s - g.start_s
    rows = [r for r in emotions if str(r["job_id"]) == jid]
    assert {(r["speaker"], r["emotion"]) for r in rows} == set(per_speaker)
    for r in rows:
        assert float(r["seconds"]) == pytest.approx(per_speaker[(r["speaker"], r["emotion"])], abs=0.01)
    for speaker in {r["speaker"] for r in rows}:
        assert sum(float(r["share"]) for r in rows if r["speaker"] == speaker) == pytest.approx(1.0, abs=0.01)

    assert sum(float(r["seconds"]) for r in weekly) == pytest.approx(sum(g.end_s - g.start_s for g in segs), abs=0.5)
    assert sum(r["jobs"] for r in weekly if r["emotion"] == meeting["dominant_emotion"]) >= 1

    said = [g for g in segs if "chicago" in (g.text or "").lower()]
    assert said and len(chicago) == len(said)
    assert all("chicago" in r["text"].lower() and r["emotion_source"] == "prosody+text" for r in chicago)
    assert "tenant b" not in " ".join(r["text"] for r in chicago)

    assert [r["emotion_source"] for r in sources] == ["prosody+text"]
    assert sources[0]["segments"] == len(segs)


def test_readme_prosody_queries_match_the_rows(roles, finished_job, measured_meeting, settings):
    """The heated moments, the fastest speakers and the weekly valence trend, as tenant-a's role,
    against the segment rows of the sample's real pipeline run and the measured meeting."""
    heated, fastest, trend = (as_role(roles["tenant-a"], q) for q in readme_queries()[6:9])
    with session_scope(settings.database_url) as s:
        tenant_id = s.get(Job, uuid.UUID(finished_job["id"])).tenant_id
        rows = s.execute(
            select(Segment, Job.created_at).join(Job).where(Job.tenant_id == tenant_id, Job.status == "done")
        ).all()
    segs = [g for g, _ in rows]

    assert [(str(r["job_id"]), float(r["start_s"])) for r in heated] == sorted(
        (str(g.job_id), round(g.start_s, 1)) for g in segs if g.heated
    )
    outburst = next(r for r in heated if r["job_id"] == measured_meeting)
    assert float(outburst["start_s"]) == 50.0 and outburst["emotion"] == "angry"
    assert float(outburst["louder_db"]) >= 6 and float(outburst["faster_syllables_s"]) >= 1.4
    assert float(outburst["higher_semitones"]) >= 3
    assert "tenant b" not in " ".join(r["text"] for r in heated)

    by_speaker: dict[tuple[str, str], list[float]] = defaultdict(list)
    for g in segs:
        if g.prosody is not None and g.speaker:
            by_speaker[(str(g.job_id), g.speaker)].append(g.prosody.get("speaking_rate"))
    expected = sorted(
        (
            (float(np.median([r for r in rates if r is not None])), key)
            for key, rates in by_speaker.items()
            if len(rates) >= 3 and any(r is not None for r in rates)
        ),
        key=lambda pair: (-pair[0], pair[1]),  # as the query orders ties: by job, then speaker
    )[:10]
    assert fastest and [(str(r["job_id"]), r["speaker"]) for r in fastest] == [key for _, key in expected]
    for r, (rate, _) in zip(fastest, expected, strict=True):
        assert float(r["syllables_per_s"]) == pytest.approx(rate, abs=0.006)

    weeks: dict[object, list[tuple[float, float]]] = defaultdict(list)
    for g, created in rows:
        if g.valence is not None:
            week = (created.astimezone(UTC) - timedelta(days=created.astimezone(UTC).weekday())).date()
            weeks[week].append((g.valence, g.end_s - g.start_s))
    assert len(trend) == len(weeks) >= 2
    for r in trend:
        pairs = weeks[r["week"]]
        assert r["segments"] == len(pairs)
        mean = sum(v * d for v, d in pairs) / sum(d for _, d in pairs)
        assert float(r["mean_valence"]) == pytest.approx(mean, abs=0.0006)
        negative = sum(d for v, d in pairs if v <= -0.05) / sum(d for _, d in pairs)
        assert float(r["negative_share"]) == pytest.approx(negative, abs=0.0006)


def test_stats_api_returns_the_views_numbers(stack, api_key, finished_job, settings, other_tenant_rows):
    url, jid = stack["url"], finished_job["id"]
    headers = {"Authorization": f"Bearer {api_key}"}
    with session_scope(settings.database_url) as s:
        tenant_id = s.get(Job, uuid.UUID(jid)).tenant_id
        view_emotions = (
            s.execute(
                text(
                    "SELECT speaker, emotion, emotion_source, seconds, segments, share FROM analytics.speaker_emotions"
                    " WHERE job_id = :j"
                ),
                {"j": jid},
            )
            .mappings()
            .all()
        )
        view_speakers = (
            s.execute(
                text(
                    "SELECT job_id, speaker, speech_s, turns, share FROM analytics.speaker_talk_time WHERE "
                    "tenant_id = :t"
                ),
                {"t": tenant_id},
            )
            .mappings()
            .all()
        )
        view_weekly = (
            s.execute(
                text(
                    "SELECT emotion, seconds FROM analytics.emotions_by_period WHERE tenant_id = :t AND grain = 'week'"
                ),
                {"t": tenant_id},
            )
            .mappings()
            .all()
        )
    api = requests.get(f"{url}/v1/stats/emotions", headers=headers, params={"job_id": jid}, timeout=30).json()["rows"]
    key = lambda r: (r["speaker"], r["emotion"])  # noqa: E731
    assert sorted((key(r), r["seconds"], r["segments"], r["share"], r["emotion_source"]) for r in api) == sorted(
        (key(r), r["seconds"], r["segments"], r["share"], r["emotion_source"]) for r in view_emotions
    )
    api = requests.get(f"{url}/v1/stats/speakers", headers=headers, timeout=30).json()["rows"]
    assert sorted((r["job_id"], r["speaker"], r["speech_s"], r["turns"], r["share"]) for r in api) == sorted(
        (str(r["job_id"]), r["speaker"], r["speech_s"], r["turns"], r["share"]) for r in view_speakers
    )
    assert str(other_tenant_rows) not in {r["job_id"] for r in api}
    api = requests.get(f"{url}/v1/stats/emotions", headers=headers, params={"grain": "week"}, timeout=30).json()["rows"]
    assert sorted((r["emotion"], r["seconds"]) for r in api) == sorted(
        (r["emotion"], r["seconds"]) for r in view_weekly
    )
    bad = requests.get(f"{url}/v1/stats/emotions", headers=headers, params={"grain": "year"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_filter"


def _login(settings, name: str, grant_views: bool = True) -> str:
    """A PostgreSQL login with the rights an analyst's has, made by hand (not through create_role,
    so not registered in sql_roles)."""
    from sqlalchemy.engine import make_url

    password = uuid.uuid4().hex
    database = make_url(settings.database_url).database
    with session_scope(settings.database_url) as s:
        s.execute(text(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"))
        s.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO "{name}"'))
        s.execute(text(f'GRANT USAGE ON SCHEMA analytics TO "{name}"'))
        if grant_views:
            s.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO "{name}"'))
    return connection_url(settings.database_url, name, password)


VIEWS = ("meetings", "speaker_talk_time", "speaker_emotions", "segments", "emotions_by_period")


def test_unmapped_and_orphaned_logins_see_nothing(settings, other_tenant_rows):
    """A login the views do not know sees no rows (it used to see every tenant): one never
    registered, and one whose registration went while the login stayed (an orphan, as deleting a
    tenant left behind before migration 0009)."""
    tag = uuid.uuid4().hex[:6]
    with session_scope(settings.database_url) as s:  # there is something to hide
        assert s.execute(text("SELECT count(*) FROM analytics.segments")).scalar_one() >= 1
    unmapped = _login(settings, f"hark_unmapped_{tag}")
    with session_scope(settings.database_url) as s:
        _, password = create_role(s, "tenant-b", f"hark_ro_orphan_{tag}")
        s.execute(text("ALTER TABLE sql_roles DISABLE TRIGGER sql_roles_drop_login"))
        s.execute(text("DELETE FROM sql_roles WHERE role_name = :r"), {"r": f"hark_ro_orphan_{tag}"})
        s.execute(text("ALTER TABLE sql_roles ENABLE TRIGGER sql_roles_drop_login"))
    orphan = connection_url(settings.database_url, f"hark_ro_orphan_{tag}", password)
    try:
        for url in (unmapped, orphan):
            for view in VIEWS:
                assert as_role(url, f"SELECT * FROM analytics.{view}") == [], view
    finally:
        with session_scope(settings.database_url) as s:
            for role in (f"hark_unmapped_{tag}", f"hark_ro_orphan_{tag}"):
                drop_role(s, role)


def test_deleting_a_tenant_drops_its_logins_and_logins_are_limited(settings):
    """Analysts' logins carry a connection limit and a statement timeout; deleting their tenant
    (the row, cascading) drops the login itself, so nobody can connect with it any more."""
    from hark.apikeys import create_key

    tag = uuid.uuid4().hex[:6]
    with session_scope(settings.database_url) as s:
        create_key(s, f"tenant-gone-{tag}")
        role, password = create_role(s, f"tenant-gone-{tag}", f"hark_ro_gone_{tag}", statement_timeout_s=1)
    url = connection_url(settings.database_url, role, password)
    (row,) = as_role(url, "SELECT current_setting('statement_timeout') AS t")
    assert row["t"] == "1s"
    with pytest.raises(psycopg.errors.QueryCanceled):
        as_role(url, "SELECT pg_sleep(3)")
    with session_scope(settings.database_url) as s:
        assert s.execute(text("SELECT rolconnlimit FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar_one() == 4
        s.execute(text("DELETE FROM tenants WHERE name = :n"), {"n": f"tenant-gone-{tag}"})
    with session_scope(settings.database_url) as s:
        assert s.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar_one() == 0
    with pytest.raises(psycopg.OperationalError):
        as_role(url, "SELECT 1")


def test_speaker_stats_come_in_pages(stack, api_key, finished_job):
    """`limit` bounds the answer; following next_cursor gives every row exactly once."""
    url, headers = f"{stack['url']}/v1/stats/speakers", {"Authorization": f"Bearer {api_key}"}
    everything = requests.get(url, headers=headers, timeout=30).json()
    assert len(everything["rows"]) >= 2 and everything["next_cursor"] is None
    paged, cursor = [], None
    while True:
        page = requests.get(
            url, headers=headers, params={"limit": 1, **({"cursor": cursor} if cursor else {})}, timeout=30
        )
        body = page.json()
        assert len(body["rows"]) <= 1
        paged += body["rows"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert paged == everything["rows"]
    for bad in ({"limit": 0}, {"limit": 100001}, {"cursor": "garbage"}):
        resp = requests.get(url, headers=headers, params=bad, timeout=30)
        assert resp.status_code == 400, bad
