"""`hark` command line: submit and follow recordings through a running API (hark/remote.py), run
the parts of a deployment (hark/processes.py), manage API keys and analysts' SQL roles."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from hark import processes, remote
from hark.settings import Settings
from hark.status import JobStatus


def _keys_create(args: argparse.Namespace) -> int:
    from hark.apikeys import create_key
    from hark.db import session_scope

    with session_scope(Settings.from_env().database_url) as s:
        secret = create_key(s, args.tenant, name=args.name, scope=args.scope)
    print(secret)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from hark.apikeys import list_keys
    from hark.db import session_scope

    with session_scope(Settings.from_env().database_url) as s:
        keys = list_keys(s, args.tenant)
    for k in keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "live"
        print(f"{k.id}  {k.prefix}…  {k.tenant:<20} {k.scope:<7} {k.name or '-':<20} {k.created_at}  {state}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from hark.apikeys import revoke_key
    from hark.db import session_scope

    with session_scope(Settings.from_env().database_url) as s:
        revoked = revoke_key(s, args.key)
    if not revoked:
        print(f"no single live key matches {args.key!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key}")
    return 0


def _sql_role_create(args: argparse.Namespace) -> int:
    from hark.db import session_scope
    from hark.sqlroles import connection_url, create_role

    settings = Settings.from_env()
    url = settings.database_url
    try:
        with session_scope(url) as s:
            role, password = create_role(
                s,
                args.tenant,
                args.name,
                statement_timeout_s=settings.sql_role_statement_timeout_s,
                connection_limit=settings.sql_role_connection_limit,
            )
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(connection_url(url, role, password))
    return 0


def _sql_role_drop(args: argparse.Namespace) -> int:
    from hark.db import session_scope
    from hark.sqlroles import drop_role

    with session_scope(Settings.from_env().database_url) as s:
        drop_role(s, args.name)
    print(f"dropped {args.name}")
    return 0


def _progress_line(job: dict[str, Any], started: float) -> str:
    p = job["progress"]
    done = f"{p['tasks_done']}/{p['tasks_total']} batches" if p.get("tasks_total") else ""
    return f"\r[{time.monotonic() - started:6.1f} s] {job['status']:<10} {p['fraction'] * 100:5.1f} % {done:<20}"


def _progress_printer(started: float) -> Callable[[dict[str, Any]], None]:
    """Redraw one line on a terminal; elsewhere (logs, CI) print a line only when something changed."""
    last = [""]

    def show(job: dict[str, Any]) -> None:
        line = _progress_line(job, started)
        if sys.stderr.isatty():
            print(line, end="", file=sys.stderr, flush=True)
        elif line[12:] != last[0]:
            print(line.lstrip("\r"), file=sys.stderr, flush=True)
            last[0] = line[12:]

    return show


def _transcribe(args: argparse.Namespace) -> int:
    from hark.client import HarkClient

    key = args.key or os.environ.get("HARK_API_KEY")
    if not key:
        print("an API key is needed: --key or HARK_API_KEY", file=sys.stderr)
        return 2
    client = HarkClient(args.url, key)
    options = {
        k: v
        for k, v in {"num_speakers": args.num_speakers, "language": args.language, "hotwords": args.hotwords}.items()
        if v
    }
    started = time.monotonic()
    print(f"uploading {args.file} ({os.path.getsize(args.file) / 1e6:.1f} MB)", file=sys.stderr)
    job = client.submit(args.file, options, **({"force": "true"} if args.force else {}))
    print(f"job {job['id']} {job['status']}", file=sys.stderr)
    job = client.wait(job["id"], on_progress=_progress_printer(started))
    print(file=sys.stderr)
    if job["status"] != JobStatus.DONE:
        err = job.get("error") or {}
        print(f"job {job['id']} {job['status']}: {err.get('code')}: {err.get('message')}", file=sys.stderr)
        return 1
    limits = {"max_line_chars": args.max_line_chars, "max_lines": args.max_lines, "max_cue_s": args.max_cue_s}
    sys.stdout.write(client.transcript(job["id"], args.format, **limits).decode("utf-8"))
    speakers = client.document(job["id"])["speakers"]
    print(
        f"done in {time.monotonic() - started:.1f} s: {job['duration_s']:.1f} s of audio, "
        f"{len(speakers)} speakers, {job['progress']['segments_total']} segments",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hark", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key for a tenant (creating the tenant if new)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--scope", default="admin", choices=["admin", "submit", "read"])
    create.set_defaults(func=_keys_create)
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant")
    listing.set_defaults(func=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id or shown prefix")
    revoke.add_argument("key")
    revoke.set_defaults(func=_keys_revoke)
    roles = sub.add_parser("sql-role", help="read-only SQL logins for analysts").add_subparsers(
        dest="role_command", required=True
    )
    role_create = roles.add_parser(
        "create", help="create a login that reads only the tenant's analytics views; prints its URL"
    )
    role_create.add_argument("--tenant", required=True)
    role_create.add_argument("--name", help="role name (default hark_ro_<tenant>)")
    role_create.set_defaults(func=_sql_role_create)
    role_drop = roles.add_parser("drop", help="drop an analyst login")
    role_drop.add_argument("name")
    role_drop.set_defaults(func=_sql_role_drop)
    tr = sub.add_parser("transcribe", help="upload a recording, wait, print the transcript")
    tr.add_argument("file")
    tr.add_argument("--url", default=os.environ.get("HARK_URL", "http://127.0.0.1:8000"))
    tr.add_argument("--key")
    tr.add_argument("--format", default="txt", choices=["txt", "json", "srt", "vtt", "rttm"])
    tr.add_argument("--num-speakers", type=int)
    tr.add_argument("--language", help="ISO 639 code, auto (default: detected per recording) or multi (per clip)")
    tr.add_argument("--hotwords", help="comma-separated names and terms the recogniser is primed with")
    remote.add_subtitle_limits(tr)
    tr.add_argument("--force", action="store_true", help="process again what this tenant already submitted")
    tr.set_defaults(func=_transcribe)
    remote.add_commands(sub)
    processes.add_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
