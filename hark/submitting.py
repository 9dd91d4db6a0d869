"""Submitting recordings from the command line: find them (files, or whole archive directories),
upload each straight to S3 through presigned part URLs, and pick an interrupted upload up where it
stopped instead of starting a multi-gigabyte file again.

What an upload has done is kept in a small state file per recording (keyed by its path, size and
modification time) under `~/.cache/hark/uploads`; on the next run the parts the S3 server already
holds are skipped. The state file is removed once the upload is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hark.client import ApiError, HarkClient, put_part

AUDIO_SUFFIXES = {
    ".wav",
    ".flac",
    ".mp3",
    ".ogg",
    ".opus",
    ".oga",
    ".m4a",
    ".aac",
    ".wma",
    ".amr",
    ".3gp",
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".aiff",
    ".aif",
    ".caf",
}


def find_recordings(paths: list[str]) -> list[Path]:
    """Named files as they are; directories searched recursively for audio/video files, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {raw}")
    return found


def state_dir() -> Path:
    return Path(os.environ.get("HARK_STATE_DIR") or Path.home() / ".cache" / "hark" / "uploads")


def _state_path(path: Path) -> Path:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    return state_dir() / f"{key}.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_direct(
    client: HarkClient,
    path: Path,
    fields: dict[str, Any],
    on_bytes: Callable[[int], None] = lambda n: None,
    on_note: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Upload one recording through a presigned multipart upload and return its job. Resumes the
    upload a previous run left unfinished; a recording this tenant already submitted comes back as
    that job without an upload (dedupe by sha256, unless `force`)."""
    state_file = _state_path(path)
    size = path.stat().st_size
    state: dict[str, Any] | None = None
    if state_file.exists():
        state = json.loads(state_file.read_text())
        try:
            plan = client.upload_status(state["upload_id"])
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
            state = None  # finished, aborted or forgotten meanwhile: start over
        else:
            if plan.get("status") != "open":
                state = None
    if state is None:
        plan = client.create_upload(path.name, size, sha256=file_sha256(path), **fields)
        if "upload_id" not in plan:
            on_bytes(size)
            on_note("already submitted")
            return plan  # the existing job
        state = {"upload_id": plan["upload_id"], "job_id": plan["job_id"]}
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state))
    else:
        on_note(f"resuming: {len(plan['uploaded'])}/{plan['parts_total']} parts already uploaded")

    part_size = plan["part_size"]
    etags = {p["part_number"]: p["etag"] for p in plan.get("uploaded", [])}
    on_bytes(sum(min(part_size, size - (n - 1) * part_size) for n in etags))
    with path.open("rb") as f:
        for part in plan["parts"]:
            n = part["part_number"]
            if n in etags:
                continue
            f.seek((n - 1) * part_size)
            data = f.read(part_size)
            etags[n] = put_part(part["url"], data)
            on_bytes(len(data))
    job = client.complete_upload(state["upload_id"], [{"part_number": n, "etag": etags[n]} for n in sorted(etags)])
    state_file.unlink(missing_ok=True)
    return job
