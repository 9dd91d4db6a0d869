"""The API while strangers misbehave: slow clients without a key, and a 2 GB JSON body.

    source infra/bootstrap.sh && python bench/slow_clients.py [--clients 50] [--seconds 10] [--sync] [--record]

Starts the web as deployed (gunicorn -c web/gunicorn_conf.py, 2 processes; `--sync` swaps in
gunicorn's sync worker, the configuration before issue 24, for comparison). Half the clients send
`POST /v1/jobs` headers promising 60 MB and 1 KB of body, then stall; the other half dribble their
headers a byte every half second. Meanwhile a keyed client polls a job's status every 50 ms:
its latencies (p50/p99/max, and polls that took over 5 s or failed) are the figure. Then a keyed
client streams a JSON body announced as 2 GB: the answer, how much it sent before it, and the
largest growth of a web worker's resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hark.processes import web_command  # noqa: E402

HEAD_60MB = (
    b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    b"Content-Length: 60000000\r\n\r\n" + b"x" * 1024
)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker_pids(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as children:
        return [int(p) for p in children.read().split()]


def huge_json(port: int, key: str) -> tuple[str, int]:
    """Stream a JSON body announced as 2 GB until the server answers: (status line, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n".encode()
    )
    chunk, sent, answer = b"[" * 65536, 0, b""
    sock.setblocking(False)
    while sent < 2_000_000_000 and not answer:
        with contextlib.suppress(BlockingIOError):
            answer = sock.recv(65536)
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.001)
        except OSError:
            break
    sock.setblocking(True)
    sock.settimeout(5)
    with contextlib.suppress(OSError):
        answer += sock.recv(65536)
    sock.close()
    return answer.split(b"\r\n", 1)[0].decode(errors="replace"), sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sync", action="store_true", help="gunicorn's sync worker instead (the old setup)")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("HARK_DATABASE_URL"):
        print("run `source infra/bootstrap.sh` first (it starts the services and sets HARK_*)", file=sys.stderr)
        return 2
    from hark.apikeys import create_key
    from hark.db import session_scope
    from tests.conftest import free_port

    with session_scope(os.environ["HARK_DATABASE_URL"]) as s:
        key = create_key(s, "bench-slow-clients")
    port = free_port()
    sync = ["--worker-class", "sync", "--timeout", "3600"] if args.sync else []
    cmd = web_command(f"127.0.0.1:{port}", 2, *sync)
    web = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    socks: list[socket.socket] = []
    stop = threading.Event()
    lines: list[str] = []
    try:
        for _ in range(150):
            with contextlib.suppress(OSError):
                requests.get(f"{url}/healthz", timeout=2)
                break
            time.sleep(0.2)
        job = requests.post(f"{url}/v1/jobs", headers=headers, files={"file": ("n.wav", b"not audio")}, timeout=30)
        job_url = f"{url}/v1/jobs/{job.json()['id']}"
        half = args.clients // 2
        for _ in range(half):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(HEAD_60MB)
            socks.append(sock)
        dribblers = []
        for _ in range(args.clients - half):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n")
            dribblers.append(sock)
        socks += dribblers

        def dribble() -> None:
            while not stop.is_set():
                for sock in dribblers:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")
                time.sleep(0.5)

        threading.Thread(target=dribble, daemon=True).start()
        latencies, failures = [], 0
        poller = requests.Session()
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            t0 = time.monotonic()
            try:
                ok = poller.get(job_url, headers=headers, timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            latencies.append((time.monotonic() - t0) * 1000)
            failures += not ok
            time.sleep(0.05)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        lines.append(
            f"- {'sync' if args.sync else 'threaded + deadlines'}: {args.clients} slow clients without a key "
            f"({half} stalled 60 MB uploads, {args.clients - half} header dribblers) for {args.seconds:.0f} s: "
            f"{len(latencies)} status polls, p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, "
            f"max {latencies[-1]:.0f} ms, {failures} failed or over 5 s"
        )
        stop.set()
        for sock in socks:
            sock.close()
        socks.clear()
        if not args.sync:
            before = {pid: rss_mib(pid) for pid in worker_pids(web.pid)}
            status, sent = huge_json(port, key)
            after = {pid: rss_mib(pid) for pid in worker_pids(web.pid)}
            grown = max(after[p] - before.get(p, 0.0) for p in after)
            lines.append(
                f"- JSON body announced as 2 GB: `{status}` after {sent / 2**20:.1f} MiB sent; "
                f"largest web worker growth {grown:.1f} MiB"
            )
        print("\n".join(lines), flush=True)
    finally:
        stop.set()
        for sock in socks:
            sock.close()
        web.terminate()
        web.wait()
    from record import report

    report("Slow and abusive clients (bench/slow_clients.py, gunicorn -w 2)", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
