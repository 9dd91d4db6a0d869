"""The job API beyond upload: listing, cancel, delete, ETag, Idempotency-Key, rate limit, errors;
all against the running gunicorn app, real PostgreSQL, Redis and S3."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from hark.db import session_scope
from hark.models import Job, Segment
from hark.pcm_store import chunk_key
from hark.storage import Storage, out_key, raw_key, vad_key

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"

pytestmark = pytest.mark.integration


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(
    url: str, key: str, content: bytes = b"not audio at all\n" * 20, name: str = "notes.wav", **headers: str
) -> requests.Response:
    return requests.post(
        f"{url}/v1/jobs",
        headers={**auth(key), **headers},
        files={"file": (name, content)},
        data={"force": "true"},
        timeout=60,  # a job of its own even when another test sent the same bytes
    )


def test_list_filters_and_paginates(stack, api_key, finished_job):
    url = stack["url"]
    made = [upload(url, api_key).json()["id"] for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{url}/v1/jobs", headers=auth(api_key), params=params, timeout=30).json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(made) | {finished_job["id"]} <= set(seen)
    created = [
        j["created_at"]
        for j in requests.get(f"{url}/v1/jobs?limit=100", headers=auth(api_key), timeout=30).json()["jobs"]
    ]
    assert created == sorted(created, reverse=True)

    done = requests.get(
        f"{url}/v1/jobs", headers=auth(api_key), params={"status": "done", "limit": 100}, timeout=30
    ).json()
    assert finished_job["id"] in {j["id"] for j in done["jobs"]} and all(j["status"] == "done" for j in done["jobs"])
    later = requests.get(
        f"{url}/v1/jobs",
        headers=auth(api_key),
        params={"created_after": finished_job["created_at"], "limit": 100},
        timeout=30,
    ).json()
    assert set(made) <= {j["id"] for j in later["jobs"]}
    earlier = requests.get(
        f"{url}/v1/jobs",
        headers=auth(api_key),
        params={"created_before": finished_job["created_at"], "limit": 100},
        timeout=30,
    ).json()
    assert finished_job["id"] not in {j["id"] for j in earlier["jobs"]}
    for bad in ({"status": "sleeping"}, {"limit": "0"}, {"cursor": "nonsense"}, {"created_after": "yesterday"}):
        resp = requests.get(f"{url}/v1/jobs", headers=auth(api_key), params=bad, timeout=30)
        assert resp.status_code == 400 and resp.json()["error"]["code"] in ("invalid_filter", "invalid_cursor")


def test_etag_gives_304_until_the_job_changes(stack, api_key, finished_job):
    url = f"{stack['url']}/v1/jobs/{finished_job['id']}"
    first = requests.get(url, headers=auth(api_key), timeout=30)
    etag = first.headers["ETag"]
    again = requests.get(url, headers={**auth(api_key), "If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    stale = requests.get(url, headers={**auth(api_key), "If-None-Match": '"something-else"'}, timeout=30)
    assert stale.status_code == 200 and stale.json() == first.json()


def test_idempotency_key_returns_the_same_job(stack, api_key, settings):
    key = f"idem-{uuid.uuid4()}"
    first = upload(stack["url"], api_key, **{"Idempotency-Key": key})
    second = upload(stack["url"], api_key, **{"Idempotency-Key": key})
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    other = upload(stack["url"], api_key, **{"Idempotency-Key": key + "-other"})
    assert other.json()["id"] != first.json()["id"]
    with session_scope(settings.database_url) as s:
        assert s.query(Job).filter(Job.idempotency_key == key).count() == 1


def test_cancel_stops_the_work(stack, api_key, settings):
    """Cancel while model batches are still queued: the workers skip them (the check before each
    task), so the job stays cancelled with batches never done."""
    import time

    from hark.models import JobTask

    url = stack["url"]
    job = upload(url, api_key, SAMPLE.read_bytes(), "sample.wav").json()
    deadline = time.monotonic() + 120
    while requests.get(f"{url}/v1/jobs/{job['id']}", headers=auth(api_key), timeout=30).json()["status"] != "inferring":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    etag = requests.get(f"{url}/v1/jobs/{job['id']}", headers=auth(api_key), timeout=30).headers["ETag"]
    resp = requests.post(f"{url}/v1/jobs/{job['id']}/cancel", headers=auth(api_key), timeout=30)
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled" and resp.json()["finished_at"]
    # The job changed, so the poller's old ETag no longer matches: a full 200 answer.
    changed = requests.get(f"{url}/v1/jobs/{job['id']}", headers={**auth(api_key), "If-None-Match": etag}, timeout=30)
    assert changed.status_code == 200 and changed.json()["status"] == "cancelled" and changed.headers["ETag"] != etag
    again = requests.post(f"{url}/v1/jobs/{job['id']}/cancel", headers=auth(api_key), timeout=30)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"

    def done_batches() -> tuple[int, int]:
        with session_scope(settings.database_url) as s:
            tasks = s.query(JobTask).filter(JobTask.job_id == uuid.UUID(job["id"])).all()
            return sum(t.done_at is not None for t in tasks), len(tasks)

    time.sleep(4)  # long enough for the model workers to drain what was queued
    done, total = done_batches()
    assert done < total
    time.sleep(2)
    assert done_batches() == (done, total)
    with session_scope(settings.database_url) as s:
        assert s.get(Job, uuid.UUID(job["id"])).status == "cancelled"
    logs = "".join(p[2].read_text(errors="replace") for p in stack["procs"].procs if p[0].startswith("worker"))
    assert "job cancelled, task skipped" in logs


def test_delete_removes_objects_and_rows(stack, api_key, settings):
    from hark.client import HarkClient

    client = HarkClient(stack["url"], api_key, timeout=120)
    samples_path = ROOT / "examples" / "sample.wav"
    job = client.wait(
        upload(stack["url"], api_key, samples_path.read_bytes(), "sample.wav").json()["id"], timeout_s=300
    )
    assert job["status"] == "done"
    storage = Storage(settings)
    keys = [raw_key(job["id"], "sample.wav"), chunk_key(job["id"], 0), vad_key(job["id"]), out_key(job["id"], "json")]
    assert all(storage.exists(k) for k in keys)
    resp = requests.delete(f"{stack['url']}/v1/jobs/{job['id']}", headers=auth(api_key), timeout=30)
    assert resp.status_code == 204
    assert not any(storage.exists(k) for k in keys)
    listed = storage.client.list_objects_v2(Bucket=settings.s3_bucket, Prefix=f"out/{job['id']}/")
    assert listed.get("KeyCount", 0) == 0
    with session_scope(settings.database_url) as s:
        assert s.get(Job, uuid.UUID(job["id"])) is None
        assert s.query(Segment).filter(Segment.job_id == uuid.UUID(job["id"])).count() == 0
    gone = requests.get(f"{stack['url']}/v1/jobs/{job['id']}", headers=auth(api_key), timeout=30)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "job_not_found"


def test_scopes_are_enforced_on_new_routes(stack, settings, finished_job):
    from hark.apikeys import create_key

    with session_scope(settings.database_url) as s:
        reader = create_key(s, "tenant-a", scope="read")
        submitter = create_key(s, "tenant-a", scope="submit")
    url, jid = stack["url"], finished_job["id"]
    assert requests.get(f"{url}/v1/jobs", headers=auth(reader), timeout=30).status_code == 200
    assert requests.get(f"{url}/v1/stats/speakers", headers=auth(reader), timeout=30).status_code == 200
    for method, path, key in (
        ("POST", f"/v1/jobs/{jid}/cancel", reader),
        ("DELETE", f"/v1/jobs/{jid}", reader),
        ("DELETE", f"/v1/jobs/{jid}", submitter),
        ("GET", "/v1/webhooks/secret", submitter),
    ):
        resp = requests.request(method, url + path, headers=auth(key), timeout=30)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "insufficient_scope", (method, path)
    assert upload(url, reader).status_code == 403
    assert requests.get(f"{url}/v1/jobs", timeout=30).json()["error"]["code"] == "missing_api_key"


def test_bad_callback_url_is_rejected(stack, api_key):
    resp = requests.post(
        f"{stack['url']}/v1/jobs",
        headers=auth(api_key),
        files={"file": ("a.wav", b"x" * 100)},
        data={"callback_url": "file:///etc/passwd"},
        timeout=30,
    )
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_callback_url"


def test_rate_limit_per_key(settings):
    """Real Redis counter, app in-process with a limit of 2 per window: the third creation by a
    key is a 429 with Retry-After and the JSON error; another key is unaffected."""
    from hark.apikeys import create_key
    from web import create_app

    app = create_app(replace(settings, rate_limit_jobs=2, rate_limit_window_s=60))
    with session_scope(settings.database_url) as s:
        first, second = create_key(s, "tenant-rate"), create_key(s, "tenant-rate")
    web = app.test_client()

    def post(key: str):
        return web.post("/v1/jobs", headers=auth(key), data={"options": "{bad"}, content_type="multipart/form-data")

    assert [post(first).status_code for _ in range(2)] == [400, 400]
    limited = post(first)
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert post(second).status_code == 400


def test_rate_limit_opens_while_redis_is_away(settings):
    """Redis is also the broker: while it is unreachable uploads are still taken (the janitor
    enqueues them later), so the limiter lets requests through instead of failing them."""
    from hark.apikeys import create_key
    from web import create_app

    app = create_app(replace(settings, broker_url="redis://127.0.0.1:1/0", rate_limit_jobs=1))
    with session_scope(settings.database_url) as s:
        key = create_key(s, "tenant-rate-away")
    web = app.test_client()
    codes = [
        web.post(
            "/v1/jobs", headers=auth(key), data={"options": "{bad"}, content_type="multipart/form-data"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 400]  # past the limit of 1, yet answered by the view, not 429 or 500
    # The other job-creating routes open too: direct uploads start (nothing is enqueued yet), and a
    # batch reaches its view's own checks (a prefix outside the tenant's inbox: 403), not a 429 or 500.
    uploads = [
        web.post("/v1/uploads", headers=auth(key), json={"filename": "a.wav", "size": 100}).status_code
        for _ in range(2)
    ]
    assert uploads == [201, 201]
    batch = web.post("/v1/batches", headers=auth(key), json={"prefix": "nothing-here/"})
    assert batch.status_code == 403 and batch.json["error"]["code"] == "key_not_allowed"


def test_request_size_limit_is_a_json_413(settings, api_key):
    from web import create_app

    app = create_app(replace(settings, max_upload_bytes=1000))
    resp = app.test_client().post(
        "/v1/jobs",
        headers=auth(api_key),
        data={"file": (__import__("io").BytesIO(b"x" * 5000), "big.wav")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 413 and resp.json["error"]["code"] == "request_entity_too_large"


def test_unknown_routes_and_methods_answer_json(stack, api_key):
    for method, path, status in (
        ("PUT", "/v1/jobs", 405),
        ("GET", "/v1/nothing-here", 404),
        ("PATCH", "/v1/stats/speakers", 405),
    ):
        resp = requests.request(method, stack["url"] + path, headers=auth(api_key), timeout=30)
        assert resp.status_code == status and resp.json()["error"]["code"] and resp.json()["error"]["message"]


def test_status_counts_tasks_and_failed_segments_in_one_read(stack, api_key, settings):
    """The status read takes the job, its task counts and whether a segment failed in one
    statement; the numbers must be the ones the rows say, and another tenant's tasks never count."""
    from sqlalchemy import func, select

    from hark.models import JobTask, Tenant

    with session_scope(settings.database_url) as s:
        tenant_id = s.scalar(select(Tenant.id).where(Tenant.name == "tenant-a"))
        jobs = []
        for status in ("inferring", "done"):
            job = Job(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                status=status,
                filename="counted.wav",
                source_key="raw/x",
                sha256=uuid.uuid4().hex * 2,
                bytes=1,
                duration_s=90.0,
                options={},
                segments_total=6,
                tasks_total=6,
            )
            s.add(job)
            jobs.append(job.id)
        s.flush()
        for jid in jobs:
            # Batch 0 (segments 0-2, 30 s of speech) complete; batch 1 (segments 3-5, 20 s) has asr done only.
            for batch, (first, last, speech) in enumerate([(0, 2, 30.0), (3, 5, 20.0)]):
                for kind in ("asr", "embed", "emotion"):
                    done = batch == 0 or kind == "asr"
                    s.add(
                        JobTask(
                            job_id=jid,
                            batch_idx=batch,
                            kind=kind,
                            first_idx=first,
                            last_idx=last,
                            speech_s=speech,
                            done_at=func.now() if done else None,
                        )
                    )
        s.add(Segment(job_id=jobs[1], tenant_id=tenant_id, idx=4, start_s=40.0, end_s=45.0, errors={"asr": "boom"}))
    try:
        for jid in jobs:
            body = requests.get(f"{stack['url']}/v1/jobs/{jid}", headers=auth(api_key), timeout=30).json()
            p = body["progress"]
            assert (p["tasks_done"], p["tasks_total"], p["segments_done"]) == (4, 6, 3)
            assert (p["speech_s_done"], p["speech_s_total"]) == (30.0, 50.0)
        assert body["partial"] is True and [f["idx"] for f in body["failed_segments"]] == [4]
        assert body["failed_segments"][0]["errors"] == {"asr": "boom"}
    finally:
        with session_scope(settings.database_url) as s:
            for jid in jobs:
                s.delete(s.get(Job, jid))


def test_status_read_matches_the_orm_view_and_survives_a_dropped_connection(settings, api_key, finished_job):
    """The status poll reads through its own kept connection (web/status_read.py). What it answers
    must be what the job's mapped row says, and a connection the server closed under it (restart,
    idle timeout) must cost a reconnect, not an error."""
    from sqlalchemy import text

    from web import create_app
    from web.jobs import failed_segments, job_view
    from web.progress import task_counts
    from web.status_read import APPLICATION_NAME

    client = create_app(settings).test_client()
    url = f"/v1/jobs/{finished_job['id']}"
    first = client.get(url, headers=auth(api_key))
    assert first.status_code == 200
    with session_scope(settings.database_url) as s:
        job = s.get(Job, uuid.UUID(finished_job["id"]))
        expected = job_view(job, task_counts(s, job.id), failed_segments(s, job.id))
    body = first.get_json()
    body["progress"].pop("eta_s"), expected["progress"].pop("eta_s")
    assert body == expected

    with session_scope(settings.database_url) as s:
        killed = s.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name "
                "AND datname = current_database()"
            ),
            {"name": APPLICATION_NAME},
        ).scalar()
    assert killed >= 1
    again = client.get(url, headers=auth(api_key))
    assert again.status_code == 200 and again.get_json()["status"] == "done"
    assert client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth(api_key)).status_code == 404


def test_list_filters_combine_batch_status_and_cursor(stack, api_key, settings):
    """Each filter set is its own compiled statement (web/status_read.py list_query): batch and
    status together, paged by cursor, must give exactly the matching jobs, newest first."""
    from sqlalchemy import select

    from hark.models import Batch, Tenant

    with session_scope(settings.database_url) as s:
        tenant_id = s.scalar(select(Tenant.id).where(Tenant.name == "tenant-a"))
        batch = Batch(id=uuid.uuid4(), tenant_id=tenant_id, name="filters")
        s.add(batch)
        s.flush()
        made = []
        for i, (status, in_batch) in enumerate([("done", True), ("failed", True), ("done", True), ("done", False)]):
            job = Job(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                status=status,
                filename=f"f{i}.wav",
                source_key="raw/x",
                sha256=uuid.uuid4().hex * 2,
                bytes=1,
                options={},
                batch_id=batch.id if in_batch else None,
            )
            s.add(job)
            s.flush()
            made.append((job.id, status, in_batch))
    try:
        url = f"{stack['url']}/v1/jobs"
        every = requests.get(url, headers=auth(api_key), params={"batch_id": str(batch.id)}, timeout=30).json()
        assert {j["id"] for j in every["jobs"]} == {str(j) for j, _, inside in made if inside}
        done, cursor = [], None
        while True:
            params = {"batch_id": str(batch.id), "status": "done", "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = requests.get(url, headers=auth(api_key), params=params, timeout=30).json()
            done += [j["id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(done) == sorted(str(j) for j, status, inside in made if inside and status == "done")
        assert len(done) == 2
        bad = requests.get(url, headers=auth(api_key), params={"batch_id": "not-a-uuid"}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_filter"
    finally:
        with session_scope(settings.database_url) as s:
            for jid, _, _ in made:
                s.delete(s.get(Job, jid))
            s.delete(s.get(Batch, batch.id))


def test_subtitle_limits_on_the_export_request(stack, api_key, finished_job):
    """srt/vtt cues re-cut to the request's limits from the stored JSON document; the JSON export
    carries each utterance's language, the recording's languages and every word's confidence."""
    url = f"{stack['url']}/v1/jobs/{finished_job['id']}/transcript"
    narrow = requests.get(
        url, headers=auth(api_key), params={"format": "srt", "max_line_chars": 24, "max_lines": 1}, timeout=30
    )
    assert narrow.status_code == 200
    lines = [x for x in narrow.text.splitlines() if x and "-->" not in x and not x.isdigit()]
    assert lines and max(len(x) for x in lines) <= 24
    stored = requests.get(url, headers=auth(api_key), params={"format": "srt"}, timeout=30).text
    assert narrow.text.count("-->") > stored.count("-->")
    bad = requests.get(url, headers=auth(api_key), params={"format": "vtt", "max_lines": 9}, timeout=30)
    assert bad.status_code == 400 and "max_lines" in bad.json()["error"]["message"]
    doc = requests.get(url, headers=auth(api_key), timeout=30).json()
    assert doc["languages"] == ["en"] and {u["language"] for u in doc["utterances"]} == {"en"}
    assert all(0 <= w["p"] <= 1 for u in doc["utterances"] for w in u["words"])
