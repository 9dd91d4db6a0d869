"""Two tenants: no route lets tenant B read, list, cancel, delete or fetch tenant A's jobs,
transcripts, stats, webhook logs or objects."""

from __future__ import annotations

import uuid

import pytest
import requests

from hark.db import session_scope
from hark.models import Job
from hark.pcm_store import chunk_key
from hark.storage import Storage, out_key
from tests.conftest import ROOT

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


def test_other_tenant_reaches_no_voice(stack, finished_job, other_key, api_key):
    """Voices, corrections and searches by voice stay in their tenant."""
    url, jid = stack["url"], finished_job["id"]
    a, b = {"Authorization": f"Bearer {api_key}"}, {"Authorization": f"Bearer {other_key}"}
    voice = requests.post(
        f"{url}/v1/voices", headers=a, json={"name": "Isolated", "job_id": jid, "speaker": "SPEAKER_00"}, timeout=30
    ).json()
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
        # B's own job of the same audio: its searches find only B's jobs, never A's.
        with (ROOT / "examples" / "sample.wav").open("rb") as f:
            own = requests.post(
                f"{url}/v1/jobs", headers=b, files={"file": ("b.wav", f)}, data={"force": "true"}, timeout=60
            )
        from hark.client import HarkClient

        done = HarkClient(url, other_key, timeout=120).wait(own.json()["id"], timeout_s=300)
        speakers = requests.get(f"{url}/v1/jobs/{done['id']}/speakers", headers=b, timeout=30).json()["speakers"]
        assert all(sp["person"] is None for sp in speakers)  # A's Isolated is not B's
        similar = requests.get(f"{url}/v1/jobs/{done['id']}/speakers/SPEAKER_00/similar", headers=b, timeout=30)
        assert jid not in {r["job_id"] for r in similar.json()["results"]}
    finally:
        requests.delete(f"{url}/v1/voices/{voice['id']}", headers=a, timeout=30)
