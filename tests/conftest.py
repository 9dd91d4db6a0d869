"""Shared fixtures. Integration tests run against real services: PostgreSQL, Redis, an S3-protocol
server (started by `infra/services.sh` when HARK_* variables are not already set), Celery workers
and the web app in their own processes. Each test session gets its own database and bucket."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
sys.path.insert(0, str(ROOT))


def _load_service_env() -> None:
    """Reuse the services `infra/services.sh` runs, starting them if needed."""
    if os.environ.get("HARK_DATABASE_URL"):
        return
    env_file = Path(os.environ.get("HARK_HOME", ROOT / ".hark")) / "services.env"
    subprocess.run(["bash", str(ROOT / "infra" / "services.sh"), "start"], check=True, stdout=subprocess.DEVNULL)
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            os.environ[key] = shlex.split(value)[0] if value else ""


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on. Every socket stays bound until all are chosen:
    the kernel may hand a just-closed port out again, and two workers given the same metrics port
    made one of them serve no metrics."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


@pytest.fixture(scope="session")
def base_settings():
    _load_service_env()
    from hark.settings import Settings

    return Settings.from_env()


def create_database(server_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from hark.db import engine_for

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine_for(url).dispose()
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def alembic(url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args], cwd=ROOT, check=True, capture_output=True
    )


@contextmanager
def isolated_settings(base_settings, **overrides):
    """Settings with a database (migrated), bucket and broker key prefix of their own, removed
    afterwards; so test sessions, and stacks inside one session, never see each other's work."""
    from dataclasses import replace

    import redis

    from hark.storage import Storage

    tag = uuid.uuid4().hex[:8]
    db_name = f"hark_test_{tag}"
    db_url = create_database(base_settings.database_url, db_name)
    alembic(db_url, "upgrade", "head")
    broker = base_settings.broker_url.rsplit("/", 1)[0] + "/13"
    cfg = replace(
        base_settings,
        database_url=db_url,
        s3_bucket=f"hark-test-{tag}",
        broker_url=broker,
        broker_key_prefix=f"hark-test-{tag}:",
        **overrides,
    )
    storage = Storage(cfg)
    storage.ensure_bucket()
    try:
        yield cfg
    finally:
        try:
            storage.delete_prefix("")
            storage.client.delete_bucket(Bucket=cfg.s3_bucket)
        finally:
            drop_database(base_settings.database_url, db_name)
            client = redis.Redis.from_url(broker)
            for key in client.scan_iter(f"{cfg.broker_key_prefix}*"):
                client.delete(key)


@pytest.fixture(scope="session")
def settings(base_settings):
    """The session's settings. Tiny batches (every segment its own), so even the 30 s sample fans
    out into several tasks per kind whose completions race each other on two model processes; S3's
    smallest parts, so a direct upload of a few MB has several."""
    with isolated_settings(
        base_settings,
        batch_speech_s=0.5,
        upload_part_bytes=5 * 1024**2,
        webhook_backoff_s=0.5,
        browser_origins="*",
        console_direct_upload_bytes=256 * 1024,
        rate_limit_jobs=100_000,  # the tests create jobs fast; the limit has a test with its own app
        metrics_token="test-metrics-token",
        # The webhook tests' receiver listens on 127.0.0.1, which callbacks may not reach otherwise.
        webhook_allow="127.0.0.1/32",
    ) as cfg:
        yield cfg


def settings_env(cfg) -> dict[str, str]:
    from dataclasses import fields

    env = dict(os.environ)
    for f in fields(cfg):
        env["HARK_" + f.name.upper()] = str(getattr(cfg, f.name))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Processes:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start a process in its own process group (so a test can kill a worker with its pool)."""
        ARTIFACTS.mkdir(exist_ok=True)
        log = ARTIFACTS / f"{name}.log"
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc, log))
        return proc

    def wait_for_log(self, name: str, needle: str, timeout: float = 120) -> None:
        _, proc, log = next(p for p in self.procs if p[0] == name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in log.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        raise TimeoutError(f"{name} not ready after {timeout} s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            proc.terminate()
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def celery_cmd(name: str, queues: str, concurrency: int = 1) -> list[str]:
    from hark.processes import worker_command

    return worker_command(queues, name, concurrency, "--loglevel=INFO")


def start_web(procs: Processes, name: str, env: dict[str, str], port: int | None = None) -> str:
    """gunicorn serving the app in its own processes (on `port`, else a free one); returns its
    base URL once it answers."""
    port = port or free_port()
    from hark.processes import web_command

    # The deployed configuration, with fewer processes for a small machine.
    cmd = web_command(f"127.0.0.1:{port}", 2)
    procs.start(name, cmd, env)
    procs.wait_for_log(name, "Booting worker")
    _wait_http(port)
    return f"http://127.0.0.1:{port}"


def refuse_network(monkeypatch) -> None:
    """Make any network use fail the test: the production engines' tests prove that loading and
    running a model never reaches a hub (sockets, and urllib which some downloaders use)."""
    import socket
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@contextmanager
def own_stack(base_settings, prefix: str, tenant: str, **overrides) -> Iterator[dict]:
    """A stack with settings of its own (`overrides` on isolated settings): a CPU worker, a model
    worker (all model queues) and the web app, named `<prefix>-cpu|model|web`, and a client with
    a key of `tenant`; yields settings, processes, their environment and the client."""
    from hark.apikeys import create_key
    from hark.client import HarkClient
    from hark.db import session_scope

    with isolated_settings(base_settings, **overrides) as cfg:
        procs = Processes()
        env = settings_env(cfg)
        try:
            procs.start(f"{prefix}-cpu", celery_cmd(f"{prefix}-cpu", "cpu,webhooks"), env)
            procs.start(f"{prefix}-model", celery_cmd(f"{prefix}-model", "asr,embed,emotion"), env)
            url = start_web(procs, f"{prefix}-web", env)
            for name in (f"{prefix}-cpu", f"{prefix}-model"):
                procs.wait_for_log(name, "ready.")
            with session_scope(cfg.database_url) as s:
                key = create_key(s, tenant)
            yield {"settings": cfg, "procs": procs, "env": env, "client": HarkClient(url, key, timeout=120)}
        finally:
            procs.stop()


@pytest.fixture(scope="session")
def stack(settings) -> Iterator[dict[str, object]]:
    """Web (gunicorn) and three Celery workers (CPU pool; model pool; webhooks), each its own process."""
    procs = Processes()
    env = settings_env(settings)
    # Chosen together: the workers bind theirs only once started, so a port picked after them
    # could be one of theirs.
    web_port, *ports = free_ports(3)
    metrics = dict(zip(("worker-cpu", "worker-model"), ports))
    try:
        procs.start("worker-cpu", celery_cmd("cpu", "cpu"), {**env, "HARK_METRICS_PORT": str(metrics["worker-cpu"])})
        procs.start(
            "worker-model",
            celery_cmd("model", "asr,embed,emotion", concurrency=2),
            {**env, "HARK_METRICS_PORT": str(metrics["worker-model"])},
        )
        procs.start("worker-webhooks", celery_cmd("webhooks", "webhooks", concurrency=2), env)
        url = start_web(procs, "web", env, web_port)
        for name in ("worker-cpu", "worker-model", "worker-webhooks"):
            procs.wait_for_log(name, "ready.")
        yield {"url": url, "procs": procs, "metrics": metrics}
    finally:
        procs.stop()


def _wait_http(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"web not listening on {port}")


@pytest.fixture(scope="session")
def api_key(settings) -> str:
    from hark.apikeys import create_key
    from hark.db import session_scope

    with session_scope(settings.database_url) as s:
        return create_key(s, "tenant-a")


@pytest.fixture(scope="session")
def client(stack, api_key):
    from hark.client import HarkClient

    return HarkClient(stack["url"], api_key, timeout=120)


class Receiver:
    """A real local HTTP server standing in for a customer's webhook endpoint. It answers 500 to
    the first `failures[path]` POSTs on a path, then 200, and keeps every request it saw."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, object]] = []
        self.failures: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # When it came: a signature is checked against that moment, however much later a test reads it.
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body, "at": time.time()}
                )
                left = receiver.failures.get(self.path, 0)
                receiver.failures[self.path] = max(0, left - 1)
                self.send_response(500 if left else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, path: str) -> list[dict[str, object]]:
        return [r for r in self.requests if r["path"] == path]

    def wait_for(self, path: str, count: int, timeout: float = 60) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while len(self.on(path)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.on(path))} of {count} webhook requests on {path}")
            time.sleep(0.2)
        return self.on(path)


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="session")
def finished_job(stack, api_key, receiver) -> dict[str, object]:
    """The sample recording run once through the real pipeline for tenant-a, with a webhook."""
    import requests

    with (ROOT / "examples" / "sample.wav").open("rb") as f:
        resp = requests.post(
            f"{stack['url']}/v1/jobs",
            headers={"Authorization": f"Bearer {api_key}"},
            files={"file": ("sample.wav", f, "audio/wav")},
            timeout=120,
            data={"callback_url": f"{receiver.url}/done", "force": "true"},  # its own job, with its webhook
        )
    assert resp.status_code == 201, resp.text
    from hark.client import HarkClient

    job = HarkClient(stack["url"], api_key, timeout=120).wait(resp.json()["id"], timeout_s=300)
    assert job["status"] == "done", job
    return job


@pytest.fixture(scope="session")
def other_key(settings) -> str:
    """An admin key of a second tenant, for isolation checks."""
    from hark.apikeys import create_key
    from hark.db import session_scope

    with session_scope(settings.database_url) as s:
        return create_key(s, "tenant-b")
