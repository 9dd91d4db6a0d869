"""The job API under load: status polling and job listing, requests/s and p50/p99 latency.

    source infra/bootstrap.sh && python bench/api_load.py [--rates 100,250,500] [--seconds 10] [--record]

Fills a tenant with jobs in every status (the way a busy archive looks: many done, some in
flight), starts the API as it runs in production (gunicorn, `--workers` processes), and drives it
from a separate load-generator process on loopback. The generator is open-loop: requests are sent
on a fixed schedule whatever the server does, and each latency counts from the request's scheduled
time, so a server that falls behind shows it in p99 instead of quietly lowering the rate.

Scenarios: `GET /v1/jobs/<id>` (a poller without a cached ETag → 200 with the body), the same with
`If-None-Match` (a poller that has one → 304), and `GET /v1/jobs?limit=20` (a console listing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hark.processes import web_command  # noqa: E402

TENANT = "bench-api-load"


def seed(jobs: int) -> tuple[str, list[str]]:
    """A fresh tenant with `jobs` jobs (80 % done, the rest queued/inferring/failed) and a key.
    Returns the key and the job ids."""
    from sqlalchemy import delete, select

    from hark.apikeys import create_key
    from hark.db import session_scope
    from hark.models import Job, Tenant
    from hark.settings import Settings

    statuses = ["done"] * 8 + ["inferring", "queued"] + ["failed"] * (jobs >= 50)
    with session_scope(Settings.from_env().database_url) as s:
        s.execute(delete(Tenant).where(Tenant.name == TENANT))
    with session_scope(Settings.from_env().database_url) as s:
        key = create_key(s, TENANT, name="api-load", scope="read")
        tenant_id = s.scalar(select(Tenant.id).where(Tenant.name == TENANT))
        ids = []
        for i in range(jobs):
            status = statuses[i % len(statuses)]
            job = Job(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                status=status,
                filename=f"meeting-{i:05d}.m4a",
                source_key=f"raw/bench/{i}",
                sha256=f"{i:064x}",
                bytes=50_000_000,
                duration_s=3600.0,
                options={},
                segments_total=900,
                tasks_total=90,
                timings={"prepare_s": 40.0, "asr_s": 120.0},
                error_code="undecodable_audio" if status == "failed" else None,
            )
            s.add(job)
            ids.append(str(job.id))
    return key, ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _one(port: int, request: bytes, scheduled: float, out: list[tuple[float, int]]) -> None:
    """Send one request at its scheduled time; record (latency from schedule, HTTP status)."""
    delay = scheduled - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        data = await reader.read()  # the server closes the connection after the response
        writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    except OSError:
        status = 0
    out.append((time.perf_counter() - scheduled, status))


async def _drive(port: int, requests: list[bytes], rate: float, seconds: float) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    start = time.perf_counter() + 0.2
    n = int(rate * seconds)
    tasks = [asyncio.create_task(_one(port, requests[i % len(requests)], start + i / rate, out)) for i in range(n)]
    await asyncio.gather(*tasks)
    return out


def generate(port: int, requests: list[bytes], rate: float, seconds: float, conn) -> None:
    """The load generator's process: runs the schedule and sends back latencies and statuses."""
    started = time.perf_counter()
    results = asyncio.run(_drive(port, requests, rate, seconds))
    conn.send((results, time.perf_counter() - started))
    conn.close()


def run_scenario(port: int, requests: list[bytes], rate: float, seconds: float) -> dict:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=generate, args=(port, requests, rate, seconds, child))
    proc.start()
    results, elapsed = parent.recv()
    proc.join()
    latencies = sorted(lat for lat, _ in results)
    ok = sum(1 for _, st in results if st in (200, 304))
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "sent": len(results),
        "ok": ok,
        "rps": ok / seconds,
        "p50": pick(0.50),
        "p99": pick(0.99),
        "max": latencies[-1] * 1000,
        "statuses": sorted({st for _, st in results}),
    }


def request_bytes(path: str, key: str, etag: str | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}", "Connection: close"]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def etag_of(port: int, path: str, key: str) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        json.load(r)
        return r.headers["ETag"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="100,250,500", help="requests per second to try, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in the tenant")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("HARK_DATABASE_URL"):
        print("run `source infra/bootstrap.sh` first (it starts the services and sets HARK_*)", file=sys.stderr)
        return 2
    key, ids = seed(args.jobs)
    port = free_port()
    web = subprocess.Popen(
        web_command(f"127.0.0.1:{port}", args.workers, "--backlog", "2048"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lines: list[str] = []
    try:
        for _ in range(150):
            try:
                etag_of(port, f"/v1/jobs/{ids[0]}", key)
                break
            except OSError:
                time.sleep(0.2)
        rng = random.Random(7)
        polled = rng.sample(ids, min(200, len(ids)))
        scenarios = {
            "status 200 (no ETag)": [request_bytes(f"/v1/jobs/{j}", key) for j in polled],
            "status 304 (If-None-Match)": [
                request_bytes(f"/v1/jobs/{j}", key, etag_of(port, f"/v1/jobs/{j}", key)) for j in polled[:50]
            ],
            "list 20 jobs": [request_bytes("/v1/jobs?limit=20", key)],
        }
        for name, reqs in scenarios.items():
            run_scenario(port, reqs, 50, 1.0)  # warm every worker's connections and caches
            for rate in (float(r) for r in args.rates.split(",")):
                # One second at the rate first: a threaded worker opens its threads' database
                # connections as concurrency first rises; the figure is the steady state after.
                run_scenario(port, reqs, rate, 1.0)
                r = run_scenario(port, reqs, rate, args.seconds)
                line = (
                    f"- {name} at {rate:.0f} req/s offered: {r['rps']:.0f} req/s served, p50 {r['p50']:.1f} ms, "
                    f"p99 {r['p99']:.1f} ms, max {r['max']:.0f} ms ({r['sent'] - r['ok']} errors)"
                )
                print(line, flush=True)
                lines.append(line)
    finally:
        web.terminate()
        web.wait()
    from record import report

    report(
        f"API under load ({args.jobs} jobs in the tenant, gunicorn -w {args.workers}, open-loop generator "
        f"in its own process, {args.seconds:.0f} s per rate)",
        lines,
        args.record,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
