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
