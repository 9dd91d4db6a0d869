"""docker-compose.yml: accepted by Compose itself (`docker-compose config`, Debian's package, which
infra/test.sh installs), and consistent with the code — every queue has a worker, the GPU worker
reserves an NVIDIA device and mounts the model directories, migrations run once before the app,
one beat runs the janitor, and every HARK_* variable is a real setting."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import yaml

from hark.queues import CPU_QUEUE, MODEL_KINDS
from hark.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _resolved() -> dict:
    tool = shutil.which("docker-compose")
    assert tool, "Debian's docker-compose is installed by infra/test.sh"
    run = subprocess.run([tool, "-f", str(COMPOSE), "config"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    return yaml.safe_load(run.stdout)


def test_compose_accepts_the_file_and_every_queue_has_a_worker() -> None:
    services = _resolved()["services"]
    consumed: set[str] = set()
    for svc in services.values():
        cmd = svc.get("command") or []
        if "worker" in cmd and "-Q" in cmd:
            consumed |= set(cmd[cmd.index("-Q") + 1].split(","))
    assert consumed == {CPU_QUEUE, *MODEL_KINDS}
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
