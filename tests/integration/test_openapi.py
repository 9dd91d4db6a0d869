"""The OpenAPI document covers every route, real responses validate against it, and a bounded
schemathesis run against the running gunicorn app finds no 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import requests

from web.openapi import undocumented

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def validate(spec: dict, path: str, method: str, response: requests.Response) -> None:
    op = spec["paths"][path][method]
    entry = op["responses"][str(response.status_code)]
    schema = entry.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return
    jsonschema.validate(
        response.json(), {**schema, "components": spec["components"]}, cls=jsonschema.Draft202012Validator
    )


def test_every_route_is_documented(settings):
    from web import create_app

    app = create_app(settings)
    assert undocumented(app) == []
    rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint != "static"}
    import re

    from web.openapi import build_spec

    paths = build_spec(app)["paths"]
    assert {re.sub(r"<([^>]+)>", r"{\1}", r) for r in rules} == set(paths)


def test_real_responses_match_the_document(stack, api_key, finished_job, other_key):
    url, jid = stack["url"], finished_job["id"]
    spec = requests.get(f"{url}/v1/openapi.json", timeout=30).json()
    assert spec["openapi"].startswith("3.")
    h = {"Authorization": f"Bearer {api_key}"}
    calls = [
        ("/v1/jobs", "get", f"{url}/v1/jobs?limit=2", h),
        ("/v1/jobs", "get", f"{url}/v1/jobs?status=bogus", h),
        ("/v1/jobs/{job_id}", "get", f"{url}/v1/jobs/{jid}", h),
        ("/v1/jobs/{job_id}", "get", f"{url}/v1/jobs/{jid}", {"Authorization": "Bearer nope"}),
        ("/v1/jobs/{job_id}", "get", f"{url}/v1/jobs/not-a-job", h),
        ("/v1/jobs/{job_id}/webhooks", "get", f"{url}/v1/jobs/{jid}/webhooks", h),
        ("/v1/stats/emotions", "get", f"{url}/v1/stats/emotions?job_id={jid}", h),
        ("/v1/stats/emotions", "get", f"{url}/v1/stats/emotions?grain=week", h),
        ("/v1/stats/speakers", "get", f"{url}/v1/stats/speakers", h),
        ("/v1/webhooks/secret", "get", f"{url}/v1/webhooks/secret", h),
        ("/v1/jobs/{job_id}/transcript", "get", f"{url}/v1/jobs/{jid}/transcript?format=bogus", h),
        ("/healthz", "get", f"{url}/healthz", {}),
    ]
    for path, method, full, headers in calls:
        resp = requests.request(method, full, headers=headers, timeout=30)
        assert str(resp.status_code) in spec["paths"][path][method]["responses"], (full, resp.status_code)
        validate(spec, path, method, resp)
    created = requests.post(
        f"{url}/v1/jobs", headers=h, files={"file": ("x.wav", b"junk" * 50)}, data={"force": "true"}, timeout=30
    )
    validate(spec, "/v1/jobs", "post", created)
    cancelled = requests.post(f"{url}/v1/jobs/{created.json()['id']}/cancel", headers=h, timeout=30)
    assert cancelled.status_code in (200, 409)
    validate(spec, "/v1/jobs/{job_id}/cancel", "post", cancelled)


def test_fuzzing_finds_no_server_errors(stack, settings, finished_job, tmp_path):
    """Property-based run: a few dozen generated requests per operation, checked for 5xx only.
    It uses its own tenant's admin key: schemathesis reuses ids and URLs it sees in responses
    (it deletes and cancels jobs), which must not reach other tests' jobs."""
    from hark.apikeys import create_key
    from hark.db import session_scope

    with session_scope(settings.database_url) as s:
        api_key = create_key(s, "tenant-fuzz")
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{stack['url']}/v1/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--workers",
        "1",
        "-H",
        f"Authorization: Bearer {api_key}",
        "--exclude-path",
        "/healthz",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "1",
    ]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "schemathesis.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
