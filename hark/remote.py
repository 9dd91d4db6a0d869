"""The `hark` commands that talk to a running deployment over its HTTP API (so they work the same
against a laptop or a remote cluster): submit recordings or whole archives with progress, list jobs,
show one, fetch a transcript, cancel. URL and key come from --url/--key or HARK_URL/HARK_API_KEY."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from hark.client import ApiError, HarkClient
from hark.progress import Board, Row
from hark.status import FINAL, JobStatus
from hark.submitting import find_recordings, upload_direct

FINISHED = FINAL
FORMATS = ("json", "srt", "vtt", "txt", "rttm")


def _client(args: argparse.Namespace) -> HarkClient:
    key = args.key or os.environ.get("HARK_API_KEY")
    if not key:
        raise SystemExit("an API key is needed: --key or HARK_API_KEY")
    return HarkClient(args.url, key, timeout=120)


def _submit(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        paths = find_recordings(args.paths)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not paths:
        print("no recordings found", file=sys.stderr)
        return 2
    options = {k: v for k, v in {"num_speakers": args.num_speakers, "language": args.language}.items() if v}
    fields: dict[str, Any] = {"options": options, "priority": args.priority}
    if args.force:
        fields["force"] = True
    rows = [Row(name=str(p), size=p.stat().st_size) for p in paths]
    board = Board(rows)
    failures = 0
    for path, row in zip(paths, rows):

        def sent(n: int, row: Row = row) -> None:
            row.sent += n
            board.draw()

        def note(text: str, row: Row = row) -> None:
            row.note = text
            board.draw()

        try:
            row.job = upload_direct(client, path, fields, on_bytes=sent, on_note=note)
        except (ApiError, OSError) as exc:
            row.note = f"upload failed: {exc}"
            failures += 1
        board.draw()
    if args.wait:
        while any(r.job and r.job["status"] not in FINISHED for r in rows):
            time.sleep(args.poll)
            for row in rows:
                if row.job and row.job["status"] not in FINISHED:
                    row.job = client.job(row.job["id"])
            board.draw()
    board.finish()
    for row in rows:
        if row.job:
            print(f"{row.job['id']}\t{row.job['status']}\t{row.name}")
    failed = sum(1 for r in rows if r.job and r.job["status"] in (JobStatus.FAILED, JobStatus.CANCELLED))
    return 1 if failures or (args.wait and failed) else 0


def _ls(args: argparse.Namespace) -> int:
    client = _client(args)
    query = {"limit": str(args.limit)}
    if args.status:
        query["status"] = args.status
    if args.batch:
        query["batch_id"] = args.batch
    page = client.jobs(**query)
    for job in page["jobs"]:
        progress = (job.get("progress") or {}).get("fraction") or 0.0
        duration = f"{job['duration_s']:.0f} s" if job.get("duration_s") else "-"
        print(
            f"{job['id']}  {job['status']:<10} {progress * 100:5.1f} %  {duration:>8}  "
            f"{job.get('created_at', '')[:19]}  {job.get('filename', '')}"
        )
    if page.get("next_cursor"):
        print(f"(more: --cursor {page['next_cursor']})", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    job = _client(args).job(args.job)
    print(json.dumps(job, indent=2))
    return 0 if job["status"] != JobStatus.FAILED else 1


def _transcript(args: argparse.Namespace) -> int:
    limits = {"max_line_chars": args.max_line_chars, "max_lines": args.max_lines, "max_cue_s": args.max_cue_s}
    sys.stdout.write(_client(args).transcript(args.job, args.format, **limits).decode("utf-8"))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    job = _client(args).cancel(args.job)
    print(f"{job['id']}\t{job['status']}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    def remote(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", default=os.environ.get("HARK_URL", "http://127.0.0.1:8000"))
        p.add_argument("--key", help="API key (default: $HARK_API_KEY)")
        return p

    p = remote("submit", "upload recordings (files or archive directories) straight to S3 and queue them")
    p.add_argument("paths", nargs="+")
    p.add_argument("--wait", action="store_true", help="follow the jobs until they finish")
    p.add_argument("--priority", choices=("interactive", "overnight"), default="interactive")
    p.add_argument("--force", action="store_true", help="process again what this tenant already submitted")
    p.add_argument("--num-speakers", type=int)
    p.add_argument("--language")
    p.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    p.set_defaults(func=_submit)

    p = remote("ls", "list jobs, newest first")
    p.add_argument("--status")
    p.add_argument("--batch")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_ls)

    p = remote("status", "show one job")
    p.add_argument("job")
    p.set_defaults(func=_status)

    p = remote("transcript", "print a finished job's transcript")
    p.add_argument("job")
    p.add_argument("--format", choices=FORMATS, default="txt")
    add_subtitle_limits(p)
    p.set_defaults(func=_transcript)

    p = remote("cancel", "cancel a job")
    p.add_argument("job")
    p.set_defaults(func=_cancel)


def add_subtitle_limits(p: argparse.ArgumentParser) -> None:
    """The srt/vtt cue limits of the export request (docs/api.md)."""
    p.add_argument("--max-line-chars", type=int, help="srt/vtt: characters per subtitle line (default 42)")
    p.add_argument("--max-lines", type=int, help="srt/vtt: lines per cue (default 2)")
    p.add_argument("--max-cue-s", type=float, help="srt/vtt: seconds a cue stays on screen (default 7)")
