"""Peak memory and throughput of the prepare stage on hours-long recordings.

    source infra/bootstrap.sh && python bench/prepare_rss.py [--hours 1 3 10] [--record]

For each length, a mostly silent recording with espeak-ng speech islands (bench/islands.py, a low
noise floor so silence is not digital zero) is generated block by block, encoded to Ogg/Opus in a
temporary file, put in the bucket and the file deleted. A job row is created and `hark.prepare`
sent to one Celery worker (`--pool solo`, so the process sampled is the one decoding); its RSS is
sampled every 50 ms and its CPU time read from /proc. Reports peak RSS per length (the goal: flat
within 10 % and under 512 MiB) and audio-hours prepared per CPU-minute. Model queues get no
worker: the fanned-out tasks are dropped from the broker afterwards.

Run it isolated from other users of the same services (HARK_BROKER_KEY_PREFIX, HARK_S3_BUCKET,
HARK_DATABASE_URL of its own).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hark.processes import worker_command  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def make_input(storage, key: str, hours: float) -> tuple[int, int]:
    """Generate, encode and upload one recording; returns (bytes, islands)."""
    from islands import island_audio

    from tests.audiofiles import encode_blocks

    blocks, islands = island_audio(hours * 3600, spacing_s=120.0, seed=int(hours * 10), noise=0.002)
    with tempfile.TemporaryDirectory() as folder:
        path = encode_blocks(blocks, 16000, Path(folder) / "archive.ogg", "ogg")
        size = path.stat().st_size
        with path.open("rb") as f, storage.writer(key, "audio/ogg") as out:
            while chunk := f.read(8 << 20):
                out.write(chunk)
    return size, len(islands)


def wait_prepared(settings, job_id: uuid.UUID, pid: int, timeout_s: float) -> tuple[str, float]:
    """Poll the job until prepare is over; returns (status, peak RSS in MiB)."""
    from hark.db import session_scope
    from hark.models import Job

    peak, deadline = 0.0, time.monotonic() + timeout_s
    last_poll = 0.0
    while time.monotonic() < deadline:
        peak = max(peak, rss_mib(pid))
        if time.monotonic() - last_poll > 1.0:
            last_poll = time.monotonic()
            with session_scope(settings.database_url) as s:
                status = s.get(Job, job_id).status
            if status not in ("queued", "preparing"):
                return status, peak
        time.sleep(0.05)
    raise TimeoutError(f"prepare of {job_id} still running after {timeout_s:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("HARK_DATABASE_URL"):
        print("run `source infra/bootstrap.sh` first (it starts the services and sets HARK_*)", file=sys.stderr)
        return 2
    import redis
    from sqlalchemy import select

    from hark.db import session_scope
    from hark.models import Job, Tenant
    from hark.queues import PREPARE, make_celery
    from hark.settings import Settings
    from hark.storage import Storage, raw_key

    settings = Settings.from_env()
    storage = Storage(settings)
    storage.ensure_bucket()
    with session_scope(settings.database_url) as s:
        tenant = s.scalar(select(Tenant).where(Tenant.name == "bench"))
        if tenant is None:
            tenant = Tenant(id=uuid.uuid4(), name="bench")
            s.add(tenant)
        tenant_id = tenant.id
    worker = subprocess.Popen(
        worker_command("cpu", f"bench-prepare-{os.getpid()}", 1, "--pool", "solo", "--loglevel=WARNING"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    celery = make_celery(settings, name="bench")
    rows: list[tuple[float, int, int, float, float, float, str]] = []

    def run(hours: float) -> tuple[float, int, int, float, float, float, str]:
        job_id = uuid.uuid4()
        key = raw_key(job_id, "archive.ogg")
        print(f"generating {hours:g} h …", flush=True)
        size, islands = make_input(storage, key, hours)
        with session_scope(settings.database_url) as s:
            s.add(
                Job(
                    id=job_id,
                    tenant_id=tenant_id,
                    status="queued",
                    filename="archive.ogg",
                    source_key=key,
                    bytes=size,
                    priority=9,
                )
            )
        cpu_before, wall_before = cpu_s(worker.pid), time.monotonic()
        celery.send_task(PREPARE, args=[str(job_id)])
        status, peak = wait_prepared(settings, job_id, worker.pid, timeout_s=max(600.0, hours * 3600))
        wall, cpu = time.monotonic() - wall_before, cpu_s(worker.pid) - cpu_before
        with session_scope(settings.database_url) as s:
            segments = s.get(Job, job_id).segments_total or 0
        print(
            f"{hours:g} h: {status}, {segments} segments ({islands} islands), peak {peak:.0f} MiB, "
            f"{wall:.0f} s wall, {cpu:.0f} s CPU",
            flush=True,
        )
        storage.delete_prefix(raw_key(job_id, ""))
        storage.delete_prefix(f"pcm/{job_id}.")
        return hours, size, segments, peak, wall, cpu, status

    try:
        time.sleep(8)
        idle_rss = rss_mib(worker.pid)
        warm_rss = run(2 / 60)[3]  # two minutes first: loads silero-vad, not reported
        rows = [run(hours) for hours in args.hours]
    finally:
        worker.terminate()
        worker.wait()
        broker = redis.Redis.from_url(settings.broker_url)
        for k in broker.scan_iter(f"{settings.broker_key_prefix}*"):
            broker.delete(k)
    peaks = [r[3] for r in rows]
    lines = [
        f"Generated Ogg/Opus recordings, mostly silence with an espeak-ng island every 120 s; one `--pool solo` "
        f"worker: {idle_rss:.0f} MiB idle, {warm_rss:.0f} MiB peak on a 2-minute warm-up (silero-vad loaded).",
        "",
        "| audio | file | segments | status | peak RSS | wall | CPU | audio-h per CPU-min |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {h:g} h | {size / 2**20:.0f} MiB | {seg} | {st} | {peak:.0f} MiB | {wall:.0f} s | {cpu:.0f} s "
            f"| {h / (cpu / 60):.2f} |"
            for h, size, seg, peak, wall, cpu, st in rows
        ],
        "",
        f"- peak RSS spread across lengths: {(max(peaks) - min(peaks)) / min(peaks) * 100:.1f} % "
        f"(goal: within 10 %, under 512 MiB)",
    ]
    from record import report

    report("Prepare stage on long recordings", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
