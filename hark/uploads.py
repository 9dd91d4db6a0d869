"""Presigned direct uploads: planning the parts, and cleaning up uploads nobody completed.

A client with a multi-gigabyte archive PUTs its parts straight to the S3 server with URLs the API
signed; the web process only creates and completes the upload. An upload that is never completed
leaves invisible parts behind that still cost storage, so `abort_abandoned` (run periodically as
the Celery task `hark.abort_abandoned_uploads`) aborts them and fails their waiting jobs.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from hark.db import session_scope
from hark.jobstate import fail
from hark.models import Upload
from hark.settings import Settings
from hark.storage import Storage

log = logging.getLogger("hark.uploads")

MIN_PART = 5 * 1024**2  # S3's smallest part (all but the last)
MAX_PARTS = 10_000  # S3's most parts per upload
MIB = 1024**2


@dataclass(frozen=True)
class PartPlan:
    part_bytes: int
    parts: int


def plan_parts(size: int, part_bytes: int) -> PartPlan:
    """Parts of at least `part_bytes` (whole MiB, >= 5 MiB), grown when the file would need more
    than S3's 10,000 parts."""
    if size <= 0:
        raise ValueError("size must be positive")
    part = max(MIN_PART, part_bytes, math.ceil(size / MAX_PARTS))
    part = math.ceil(part / MIB) * MIB
    return PartPlan(part, max(1, math.ceil(size / part)))


def part_length(size: int, part_bytes: int, part_number: int) -> int:
    """The exact length of part `part_number` (from 1) of a `size`-byte file cut in `part_bytes`
    parts: what its presigned URL is signed for, and what completing the upload checks."""
    return max(0, min(part_bytes, size - (part_number - 1) * part_bytes))


@dataclass
class AbortReport:
    uploads: list[uuid.UUID]
    orphans: int


def abort_abandoned(settings: Settings, now: datetime | None = None) -> AbortReport:
    """Abort every open upload older than `upload_abandon_s`, mark its job failed
    (`upload_abandoned`), and abort multipart uploads under raw/ of that age that no row knows
    (a crash between creating the S3 upload and its row). Safe to run concurrently and repeatedly."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=settings.upload_abandon_s)
    storage = Storage(settings)
    aborted: list[uuid.UUID] = []
    with session_scope(settings.database_url) as s:
        stale = s.scalars(
            select(Upload).where(Upload.status == "open", Upload.created_at < cutoff).with_for_update(skip_locked=True)
        ).all()
        for upload in stale:
            storage.abort_multipart(upload.key, upload.s3_upload_id)
            storage.delete_prefix(upload.key)
            upload.status = "aborted"
            fail(s, upload.job_id, "upload_abandoned", "the direct upload was not completed in time")
            aborted.append(upload.id)
        known = set(s.scalars(select(Upload.s3_upload_id).where(Upload.status == "open")).all())
    orphans = 0
    for item in storage.multipart_uploads("raw/"):
        if item["UploadId"] not in known and item["Initiated"] < cutoff:
            storage.abort_multipart(item["Key"], item["UploadId"])
            orphans += 1
    if aborted or orphans:
        log.info("aborted abandoned uploads", extra={"uploads": len(aborted), "orphans": orphans})
    return AbortReport(aborted, orphans)
