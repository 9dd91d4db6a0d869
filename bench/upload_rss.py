"""Peak memory of a web worker while a large upload streams through it to S3.

    source infra/bootstrap.sh && python bench/upload_rss.py [--mb 1000] [--record]

Starts one gunicorn worker against the local services, uploads a file of random bytes through
`POST /v1/jobs` with the streaming client, samples the worker's RSS every 50 ms, and reports
throughput and peak RSS. (The job then fails as undecodable; only the upload is measured.)
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hark.processes import web_command  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1000)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("HARK_DATABASE_URL"):
        print("run `source infra/bootstrap.sh` first (it starts the services and sets HARK_*)", file=sys.stderr)
        return 2
    from hark.apikeys import create_key
    from hark.client import HarkClient
    from hark.db import session_scope
    from hark.settings import Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web = subprocess.Popen(
        web_command(f"127.0.0.1:{port}", 1),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(args.mb):
                f.write(chunk)
            f.flush()
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            worker = int(subprocess.check_output(["pgrep", "-P", str(web.pid)], text=True).split()[0])
            with session_scope(Settings.from_env().database_url) as s:
                key = create_key(s, "bench")
            before, peak, done = rss_mib(worker), [0.0], threading.Event()

            def watch() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_mib(worker))
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch)
            watcher.start()
            started = time.monotonic()
            job = HarkClient(f"http://127.0.0.1:{port}", key, timeout=3600).submit(f.name)
            elapsed = time.monotonic() - started
            done.set()
            watcher.join()
    finally:
        web.terminate()
        web.wait()
    assert job["bytes"] == args.mb << 20
    lines = [
        f"- {args.mb} MiB multipart upload through `POST /v1/jobs` to S3 in {elapsed:.1f} s "
        f"({args.mb / elapsed:.0f} MiB/s)",
        f"- web worker RSS: {before:.0f} MiB before, peak {peak[0]:.0f} MiB during the upload",
    ]
    from record import report

    report("Web upload streaming", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
