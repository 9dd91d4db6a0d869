"""Two tenants: no route lets tenant B read, list, cancel, delete or fetch tenant A's jobs,
transcripts, stats, webhook logs or objects."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import requests
from sqlalchemy import delete, select

from hark.db import session_scope
from hark.models import Job, Speaker, Tenant
from hark.pcm_store import chunk_key
from hark.storage import Storage, out_key
from worker.voices import match_speakers

pytestmark = pytest.mark.integration


def test_other_tenant_reaches_nothing(stack, settings, finished_job, other_key, api_key):
    url, jid = stack["url"], finished_job["id"]
    b = {"Authorization": f"Bearer {other_key}"}
    for method, path in (
        ("GET", f"/v1/jobs/{jid}"),
        ("GET", f"/v1/jobs/{jid}/transcript?format=json"),
        ("GET", f"/v1/jobs/{jid}/webhooks"),
        ("POST", f"/v1/jobs/{jid}/cancel"),
        ("DELETE", f"/v1/jobs/{jid}"),
    ):
        resp = requests.request(method, url + path, headers=b, timeout=30)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "job_not_found", (method, path)
    # The presigned playback URL of the original (web/media.py, where present) is issued only to
    # the job's own tenant.
    assert requests.get(f"{url}/v1/jobs/{jid}/media", headers=b, timeout=30).status_code == 404
    listed = requests.get(f"{url}/v1/jobs", headers=b, params={"limit": 100}, timeout=30).json()
    assert jid not in {j["id"] for j in listed["jobs"]}
    for path in (
        "/v1/stats/speakers",
        f"/v1/stats/speakers?job_id={jid}",
        f"/v1/stats/emotions?job_id={jid}",
        "/v1/stats/emotions?grain=day",
    ):
        rows = requests.get(url + path, headers=b, timeout=30).json()["rows"]
        assert all(r.get("job_id") != jid for r in rows)
        if "job_id=" in path:
            assert rows == []
    # B's secret is its own: it cannot verify (or forge) A's webhooks.
    secret_a = requests.get(
        f"{url}/v1/webhooks/secret", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ).json()
    secret_b = requests.get(f"{url}/v1/webhooks/secret", headers=b, timeout=30).json()
    assert secret_a["secret"] != secret_b["secret"]
    # The same Idempotency-Key in another tenant is another job.
    key = f"shared-{uuid.uuid4()}"
    jobs = [
        requests.post(
            f"{url}/v1/jobs",
            headers={**h, "Idempotency-Key": key},
            files={"file": ("n.wav", b"no" * 100)},
            data={"force": "true"},
            timeout=30,
        )
        for h in ({"Authorization": f"Bearer {api_key}"}, b)
    ]
    assert [r.status_code for r in jobs] == [201, 201] and jobs[0].json()["id"] != jobs[1].json()["id"]
    # Nothing was touched, and the objects are not reachable without presigning by the service.
    with session_scope(settings.database_url) as s:
        assert s.get(Job, uuid.UUID(jid)).status == "done"
    storage = Storage(settings)
    assert storage.exists(chunk_key(jid, 0)) and storage.exists(out_key(jid, "json"))
    for key in (chunk_key(jid, 0), out_key(jid, "json")):
        anonymous = requests.get(f"{settings.s3_endpoint}/{settings.s3_bucket}/{key}", timeout=30)
        assert anonymous.status_code in (401, 403), key


def test_other_tenant_reaches_no_voice(stack, settings, finished_job, other_key, api_key):
    """Voices, corrections and searches by voice stay in their tenant."""
    url, jid = stack["url"], finished_job["id"]
    a, b = {"Authorization": f"Bearer {api_key}"}, {"Authorization": f"Bearer {other_key}"}
    voice = requests.post(
        f"{url}/v1/voices", headers=a, json={"name": "Isolated", "job_id": jid, "speaker": "SPEAKER_00"}, timeout=30
    ).json()
    jb = uuid.uuid4()  # tenant-b's own job, made below
    try:
        for method, path, body in (
            ("GET", f"/v1/voices/{voice['id']}", None),
            ("PATCH", f"/v1/voices/{voice['id']}", {"name": "Taken"}),
            ("DELETE", f"/v1/voices/{voice['id']}", None),
            ("GET", f"/v1/voices/{voice['id']}/meetings", None),
            ("POST", f"/v1/voices/{voice['id']}/samples", {"job_id": jid, "speaker": "SPEAKER_00"}),
        ):
            resp = requests.request(method, url + path, headers=b, json=body, timeout=30)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "voice_not_found", (method, path)
        for method, path, body in (
            ("POST", "/v1/voices", {"name": "Stolen", "job_id": jid, "speaker": "SPEAKER_00"}),
            ("GET", f"/v1/jobs/{jid}/speakers", None),
            ("PATCH", f"/v1/jobs/{jid}/speakers/SPEAKER_00", {"name": "Mallory"}),
            ("GET", f"/v1/jobs/{jid}/speakers/SPEAKER_00/similar", None),
        ):
            resp = requests.request(method, url + path, headers=b, json=body, timeout=30)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "job_not_found", (method, path)
        assert requests.get(f"{url}/v1/voices", headers=b, timeout=30).json()["voices"] == []
        # B's own finished job with a speaker of exactly A's voice (the same vector): A's voice
        # does not name it, and B's searches never reach A's jobs.
        with session_scope(settings.database_url) as s:
            mine = s.scalar(select(Speaker).where(Speaker.job_id == uuid.UUID(jid), Speaker.label == "SPEAKER_00"))
            tenant_b = s.scalar(select(Tenant.id).where(Tenant.name == "tenant-b"))
            s.add(Job(id=jb, tenant_id=tenant_b, status="done", filename="b-voice.wav", duration_s=5.0, options={}))
            s.flush()
            s.add(
                Speaker(
                    job_id=jb, tenant_id=tenant_b, label="SPEAKER_00", speech_s=5.0, turns=1, centroid=mine.centroid
                )
            )
            s.flush()
            assert match_speakers(s, tenant_b, jb, {"SPEAKER_00": np.asarray(mine.centroid)}) == {}
        similar = requests.get(f"{url}/v1/jobs/{jb}/speakers/SPEAKER_00/similar", headers=b, timeout=30)
        assert similar.status_code == 200 and jid not in {r["job_id"] for r in similar.json()["results"]}
        own = requests.post(
            f"{url}/v1/voices", headers=b, json={"name": "Isolated", "job_id": str(jb), "speaker": "SPEAKER_00"}
        )
        assert own.status_code == 201  # the same name in another tenant is another person
        found = requests.get(f"{url}/v1/voices/{own.json()['id']}/meetings", headers=b, timeout=30).json()
        assert {r["job_id"] for r in found["results"]} == {str(jb)}
    finally:
        with session_scope(settings.database_url) as s:  # other tests count tenant-b's jobs
            s.execute(delete(Job).where(Job.id == jb))
        requests.delete(f"{url}/v1/voices/{voice['id']}", headers=a, timeout=30)
        for v in requests.get(f"{url}/v1/voices", headers=b, timeout=30).json()["voices"]:
            requests.delete(f"{url}/v1/voices/{v['id']}", headers=b, timeout=30)
