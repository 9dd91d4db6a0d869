"""`hark serve` and `hark worker`: run the parts of a deployment from the installed package, with
the settings of the environment (HARK_*), so a host needs nothing but `pip install hark`."""

from __future__ import annotations

import argparse
import os
import sys

from hark.queues import CPU_QUEUE, MODEL_KINDS, WEBHOOK_QUEUE

QUEUES = (CPU_QUEUE, *MODEL_KINDS, WEBHOOK_QUEUE)


def _serve(args: argparse.Namespace) -> int:
    # The deployed configuration (threaded workers with client deadlines, web/gunicorn_conf.py).
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:web.gunicorn_conf",
        "-w",
        str(args.workers),
        "-b",
        f"{args.host}:{args.port}",
        "web:create_app()",
    ]
    os.execv(sys.executable, cmd)
    return 0  # not reached


def _worker(args: argparse.Namespace) -> int:
    queues = args.queues.split(",")
    unknown = set(queues) - set(QUEUES)
    if unknown:
        print(f"unknown queues: {', '.join(sorted(unknown))} (known: {', '.join(QUEUES)})", file=sys.stderr)
        return 2
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "-Q",
        args.queues,
        "-c",
        str(args.concurrency),
        "-n",
        f"{args.name or queues[0]}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    if args.beat:
        cmd += ["-B", "-s", args.beat_schedule]
    os.execv(sys.executable, cmd)
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
