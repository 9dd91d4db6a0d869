"""`hark serve` and `hark worker`: run the parts of a deployment from the installed package, with
the settings of the environment (HARK_*), so a host needs nothing but `pip install hark`."""

from __future__ import annotations

import argparse
import os
import sys

from hark.queues import CPU_QUEUE, MODEL_KINDS, WEBHOOK_QUEUE

QUEUES = (CPU_QUEUE, *MODEL_KINDS, WEBHOOK_QUEUE)


def web_command(bind: str, workers: int, *extra: str) -> list[str]:
    """gunicorn serving the API as deployed (web/gunicorn_conf.py: threaded workers with client
    deadlines); `extra` gunicorn options come before the app."""
    conf = ["-c", "python:web.gunicorn_conf", "-w", str(workers), "-b", bind, *extra]
    return [sys.executable, "-m", "gunicorn", *conf, "web:create_app()"]


def worker_command(queues: str, name: str, concurrency: int = 1, *extra: str) -> list[str]:
    """A Celery worker for `queues` (comma-separated), its node named `name`@host."""
    node = ["-Q", queues, "-c", str(concurrency), "-n", f"{name}@%h", "--without-mingle", "--without-gossip"]
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", *node, *extra]


def _serve(args: argparse.Namespace) -> int:
    cmd = web_command(f"{args.host}:{args.port}", args.workers)
    os.execv(sys.executable, cmd)
    return 0  # not reached


def _worker(args: argparse.Namespace) -> int:
    queues = args.queues.split(",")
    unknown = set(queues) - set(QUEUES)
    if unknown:
        print(f"unknown queues: {', '.join(sorted(unknown))} (known: {', '.join(QUEUES)})", file=sys.stderr)
        return 2
    beat = ["-B", "-s", args.beat_schedule] if args.beat else []
    os.execv(sys.executable, worker_command(args.queues, args.name or queues[0], args.concurrency, *beat))
    return 0  # not reached


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP API (gunicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=4)
    p.set_defaults(func=_serve)

    p = sub.add_parser("worker", help="run a Celery worker for some queues")
    p.add_argument("--queues", default=CPU_QUEUE, help=f"comma-separated: {', '.join(QUEUES)}")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--name")
    p.add_argument("--beat", action="store_true", help="also run the janitor's clock (one per deployment)")
    p.add_argument("--beat-schedule", default="/tmp/hark-beat-schedule")
    p.set_defaults(func=_worker)
