"""Webhooks to a real local HTTP receiver: signed, retried with backoff, recorded, queryable."""

from __future__ import annotations

import json

import pytest
import requests

from hark.webhooks import SIGNATURE_HEADER, verify

pytestmark = pytest.mark.integration


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_done_webhook_is_signed_and_recorded(stack, api_key, finished_job, receiver):
    secret = requests.get(f"{stack['url']}/v1/webhooks/secret", headers=auth(api_key), timeout=30).json()["secret"]
    receiver.wait_for("/done", 1)
    (hit,) = [h for h in receiver.on("/done") if finished_job["id"].encode() in h["body"]]
    body = hit["body"]
    # Checked as the receiver would have on arrival: the job may have finished minutes ago.
    header, at = hit["headers"][SIGNATURE_HEADER], hit["at"]
    assert verify(secret, header, body, now=at)
    assert not verify(secret, header, body + b" ", now=at)
    assert not verify("whsec_wrong", header, body, now=at)
    event = json.loads(body)
    assert (
        event["event"] == "job.done" and event["job"]["id"] == finished_job["id"] and event["job"]["status"] == "done"
    )
    log = requests.get(
        f"{stack['url']}/v1/jobs/{finished_job['id']}/webhooks", headers=auth(api_key), timeout=30
    ).json()
    (delivery,) = log["deliveries"]
    assert delivery["state"] == "delivered" and delivery["event"] == "job.done"
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


def test_failed_job_webhook_retries_until_delivered(stack, api_key, receiver):
    receiver.failures["/flaky"] = 2
    resp = requests.post(
        f"{stack['url']}/v1/jobs",
        headers=auth(api_key),
        files={"file": ("notes.wav", b"meeting notes\n" * 40)},
        data={"callback_url": f"{receiver.url}/flaky", "force": "true"},
        timeout=30,
    )
    job_id = resp.json()["id"]
    hits = receiver.wait_for("/flaky", 3, timeout=90)
    events = [json.loads(h["body"]) for h in hits]
    assert all(e["event"] == "job.failed" and e["job"]["error"]["code"] == "undecodable_audio" for e in events)
    deadline_log = None
    for _ in range(50):
        deadline_log = requests.get(
            f"{stack['url']}/v1/jobs/{job_id}/webhooks", headers=auth(api_key), timeout=30
        ).json()
        if deadline_log["deliveries"] and deadline_log["deliveries"][0]["state"] != "pending":
            break
        __import__("time").sleep(0.2)
    (delivery,) = deadline_log["deliveries"]
    assert delivery["state"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3]


def test_unreachable_receiver_gives_up_after_max_attempts(stack, api_key, settings):
    url = "http://127.0.0.1:9/unreachable"  # discard port: connection refused
    resp = requests.post(
        f"{stack['url']}/v1/jobs",
        headers=auth(api_key),
        files={"file": ("notes.wav", b"not audio\n" * 40)},
        data={"callback_url": url, "force": "true"},
        timeout=30,
    )
    job_id = resp.json()["id"]
    for _ in range(200):
        log = requests.get(f"{stack['url']}/v1/jobs/{job_id}/webhooks", headers=auth(api_key), timeout=30).json()
        if log["deliveries"] and log["deliveries"][0]["state"] != "pending":
            break
        __import__("time").sleep(0.25)
    (delivery,) = log["deliveries"]
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == settings.webhook_max_attempts
    assert all(a["status_code"] is None and a["error"] for a in delivery["attempts"])


def test_secret_rotation_signs_with_both_secrets_during_the_grace_period(stack, api_key, receiver):
    """An admin key rotates the tenant's secret; the next delivery verifies with the new secret
    and, during the grace period, with the old one too; the signature is fresh (replay window)."""
    old = requests.get(f"{stack['url']}/v1/webhooks/secret", headers=auth(api_key), timeout=30).json()["secret"]
    rotated = requests.post(f"{stack['url']}/v1/webhooks/secret/rotate", headers=auth(api_key), timeout=30)
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert requests.get(f"{stack['url']}/v1/webhooks/secret", headers=auth(api_key), timeout=30).json()["secret"] == new
    resp = requests.post(
        f"{stack['url']}/v1/jobs",
        headers=auth(api_key),
        files={"file": ("notes.wav", b"rotation\n" * 40)},
        data={"callback_url": f"{receiver.url}/rotated", "force": "true"},
        timeout=30,
    )
    assert resp.status_code == 201
    (hit,) = receiver.wait_for("/rotated", 1)
    header = hit["headers"][SIGNATURE_HEADER]
    assert verify(new, header, hit["body"]) and verify(old, header, hit["body"])
    assert not verify("whsec_other", header, hit["body"])
