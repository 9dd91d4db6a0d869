"""Chaos: the services go away in the middle of jobs. This module runs a private set of services
(its own PostgreSQL cluster, Redis and SeaweedFS through infra/services.sh, on ports of its own) so it
can stop them without disturbing anything else, and a stack of web + workers against them.

- Redis stopped and started again (it keeps nothing on disk, so queued messages are lost): the
  workers reconnect and the janitor sends the lost work again.
- PostgreSQL stopped for a few seconds: the API answers 503 with a JSON error meanwhile; tasks retry
  with backoff and the job completes.
- The S3 server stopped for a few seconds: requests are retried and the job completes.

Every disturbed job must end `done` with the same transcript as an undisturbed run."""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hark.client import HarkClient
from hark.db import engine_for, session_scope
from hark.models import JobTask
from tests.conftest import ROOT, Processes, alembic, celery_cmd, settings_env, start_web

SAMPLE = ROOT / "examples" / "sample.wav"
SERVICES = ROOT / "infra" / "services.sh"

pytestmark = pytest.mark.integration


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _ports() -> dict[str, int]:
    """Ports for the private services: S3 at p (SeaweedFS also uses p-33 … p+1 and p-10029),
    PostgreSQL at p-60, Redis at p-50; all of them free."""
    for _ in range(200):
        p = random.randint(21000, 30000)
        if all(_free(q) for q in [*range(p - 60, p + 2), p - 10029]):
            return {"HARK_S3_PORT": p, "HARK_PG_PORT": p - 60, "HARK_REDIS_PORT": p - 50}
    raise RuntimeError("no free port range for the private services")


class PrivateServices:
    """infra/services.sh with a home and ports of its own."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="hark-o-", dir="/tmp"))
        self.home.chmod(0o755)  # the PostgreSQL server runs as postgres and keeps its cluster here
        self.env = {
            **os.environ,
            "HARK_HOME": str(self.home),
            "HARK_VENV_PYTHON": sys.executable,
            **{k: str(v) for k, v in _ports().items()},
        }
        for key in ("HARK_DATABASE_URL", "HARK_BROKER_URL", "HARK_S3_ENDPOINT"):
            self.env.pop(key, None)

    def run(self, *args: str) -> None:
        subprocess.run(["bash", str(SERVICES), *args], env=self.env, check=True, capture_output=True, timeout=180)

    def settings_env(self) -> dict[str, str]:
        values = {}
        for line in (self.home / "services.env").read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                values[key] = shlex.split(value)[0] if value else ""
        return values

    def remove(self) -> None:
        try:
            self.run("stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory) -> Iterator[dict]:
    from hark.settings import Settings

    services = PrivateServices()
    procs = Processes()
    cfg = None
    try:
        services.run("start")
        base = services.settings_env()
        cfg = Settings.from_env(
            database_url=base["HARK_DATABASE_URL"],
            broker_url=base["HARK_BROKER_URL"],
            s3_endpoint=base["HARK_S3_ENDPOINT"],
            s3_bucket=base["HARK_S3_BUCKET"],
            max_segment_s=3.0,
            batch_speech_s=2.0,
            janitor_interval_s=1.0,
            janitor_stale_s=20.0,
            janitor_lost_s=4.0,
        )
        alembic(cfg.database_url, "upgrade", "head")
        env = settings_env(cfg)
        beat = tmp_path_factory.mktemp("beat") / "schedule"
        procs.start("outage-cpu", [*celery_cmd("outage-cpu", "cpu"), "-B", "-s", str(beat)], env)
        procs.start("outage-model", celery_cmd("outage-model", "asr,embed,emotion"), env)
        url = start_web(procs, "outage-web", env)
        for name in ("outage-cpu", "outage-model"):
            procs.wait_for_log(name, "ready.")
        from hark.apikeys import create_key

        with session_scope(cfg.database_url) as s:
            key = create_key(s, "outages")
        client = HarkClient(url, key, timeout=60)
        reference = client.wait(client.submit(str(SAMPLE))["id"], timeout_s=180)
        assert reference["status"] == "done"
        yield {
            "services": services,
            "settings": cfg,
            "client": client,
            "url": url,
            "key": key,
            "reference": client.transcript(reference["id"], "txt"),
        }
    finally:
        procs.stop()
        if cfg is not None:
            engine_for(cfg.database_url).dispose()
        services.remove()


def _wait_until_under_way(cfg, job_id: str) -> None:
    """Until at least two batch tasks of the job are done (and not all)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with session_scope(cfg.database_url) as s:
            done, total = s.execute(
                select(func.count().filter(JobTask.done_at.is_not(None)), func.count()).where(
                    JobTask.job_id == uuid.UUID(job_id)
                )
            ).one()
        if total and 2 <= done < total:
            return
        time.sleep(0.05)
    raise TimeoutError("the job never got under way")


def _finishes_like_the_reference(stack: dict, job_id: str) -> None:
    client = stack["client"]
    job = client.wait(job_id, timeout_s=240)
    assert job["status"] == "done", job
    assert client.transcript(job_id, "txt") == stack["reference"]


def _outage_mid_job(stack: dict, service: str, seconds: float) -> str:
    """Submit the sample, stop `service` once the job is under way, start it again `seconds` later."""
    job_id = stack["client"].submit(str(SAMPLE), force="true")["id"]
    _wait_until_under_way(stack["settings"], job_id)
    stack["services"].run("stop", service)
    time.sleep(seconds)
    stack["services"].run("start")
    return job_id


def test_redis_restart_loses_queued_work_and_the_janitor_recovers_it(outage_stack) -> None:
    _finishes_like_the_reference(outage_stack, _outage_mid_job(outage_stack, "redis", 3))


def test_postgres_down_gives_503_json_then_the_job_completes(outage_stack) -> None:
    job_id = outage_stack["client"].submit(str(SAMPLE), force="true")["id"]
    _wait_until_under_way(outage_stack["settings"], job_id)
    outage_stack["services"].run("stop", "postgres")
    try:
        request = urllib.request.Request(
            f"{outage_stack['url']}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {outage_stack['key']}"}
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert answer.value.code == 503
        assert json.loads(answer.value.read())["error"]["code"]
        time.sleep(2)
    finally:
        outage_stack["services"].run("start")
    _finishes_like_the_reference(outage_stack, job_id)


def test_s3_unavailable_for_seconds_then_the_job_completes(outage_stack) -> None:
    _finishes_like_the_reference(outage_stack, _outage_mid_job(outage_stack, "s3", 4))
