"""docker-compose.yml: accepted by Compose itself (`docker-compose config`, Debian's package, which
infra/test.sh installs), and consistent with the code — every queue has a worker, the GPU worker
reserves an NVIDIA device and mounts the model directories, migrations run once before the app,
one beat runs the janitor, and every HARK_* variable is a real setting. And hardened: no secret has
a working default, admin consoles are not published to the network, nothing runs as root or as the
database superuser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import fields
from pathlib import Path

import yaml

from hark.queues import CPU_QUEUE, MODEL_KINDS, WEBHOOK_QUEUE
from hark.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# What infra/compose/secrets.sh writes into .env (values made up here).
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "DB_PASSWORD": "db-secret",
    "MINIO_ROOT_USER": "root-user",
    "MINIO_ROOT_PASSWORD": "root-secret",
    "HARK_S3_ACCESS_KEY": "s3-user",
    "HARK_S3_SECRET_KEY": "s3-secret",
    "FLOWER_BASIC_AUTH": "admin:flower-secret",
}


def _config(secrets: dict[str, str]) -> subprocess.CompletedProcess:
    tool = shutil.which("docker-compose")
    assert tool, "Debian's docker-compose is installed by infra/test.sh"
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "HARK_METRICS_TOKEN"}
    empty = Path(tempfile.mkdtemp()) / "empty.env"
    empty.write_text("")
    return subprocess.run(
        # An empty env file: a developer's own .env must not decide the test.
        [tool, "-f", str(COMPOSE), "--env-file", str(empty), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**env, **secrets},
    )


def _resolved() -> dict:
    run = _config(SECRETS)
    assert run.returncode == 0, run.stderr
    return yaml.safe_load(run.stdout)


def test_compose_accepts_the_file_and_every_queue_has_a_worker() -> None:
    services = _resolved()["services"]
    consumed: set[str] = set()
    for svc in services.values():
        cmd = svc.get("command") or []
        if "worker" in cmd and "-Q" in cmd:
            consumed |= set(cmd[cmd.index("-Q") + 1].split(","))
    assert consumed == {CPU_QUEUE, *MODEL_KINDS, WEBHOOK_QUEUE}
    assert sum(1 for svc in services.values() if "beat" in (svc.get("command") or [])) == 1


def test_gpu_worker_migrations_and_settings() -> None:
    services = _resolved()["services"]
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    mounts = [v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in gpu["volumes"]]
    assert any(m.split(":")[1] == "/models" for m in mounts), mounts
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    known = {"HARK_" + f.name.upper() for f in fields(Settings)}
    for name, svc in services.items():
        for var in svc.get("environment") or {}:
            if var.startswith("HARK_"):
                assert var in known, f"{name} sets unknown {var}"


def test_no_secret_has_a_working_default() -> None:
    """Leave out any one secret and Compose refuses the file, naming the script that makes them."""
    for name in SECRETS:
        run = _config({k: v for k, v in SECRETS.items() if k != name})
        assert run.returncode != 0 and "secrets.sh" in run.stderr, name
    text = COMPOSE.read_text()
    assert "harksecret" not in text and not re.search(r"POSTGRES_PASSWORD: *[a-z]", text)


def test_consoles_are_not_published_and_the_app_is_not_the_superuser() -> None:
    services = _resolved()["services"]
    for svc in services.values():
        for port in svc.get("ports") or []:
            published = port if isinstance(port, dict) else {}
            if published.get("target") in (5555, 9001):  # Flower, MinIO's admin console
                assert published.get("host_ip") == "127.0.0.1", port
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == SECRETS["FLOWER_BASIC_AUTH"]
    # The superuser is the image's `postgres`; Hark's login is `hark`, made by the init script
    # without SUPERUSER or CREATEDB.
    assert "POSTGRES_USER" not in services["postgres"]["environment"]
    init = (ROOT / "infra" / "compose" / "postgres-init.sh").read_text()
    assert "NOSUPERUSER NOCREATEDB" in init
    for name in ("web", "worker-cpu", "worker-gpu", "worker-webhooks", "beat", "migrate"):
        url = services[name]["environment"]["HARK_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://hark:db-secret@"), name
        assert services[name]["environment"]["HARK_S3_ACCESS_KEY"] == "s3-user", name


def test_image_runs_as_an_unprivileged_user() -> None:
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "infra" / "Dockerfile").read_text(), re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
