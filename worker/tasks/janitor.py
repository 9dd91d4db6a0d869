"""Housekeeping tasks for an operator's schedule (celery beat, cron + `celery call`).

    celery -A worker.celery_app call hark.abort_abandoned_uploads
"""
from __future__ import annotations

from hark.queues import ABORT_ABANDONED_UPLOADS
from hark.uploads import abort_abandoned
from worker.celery_app import app
from worker.tasks.common import settings


@app.task(name=ABORT_ABANDONED_UPLOADS)
def abort_abandoned_uploads() -> dict[str, int]:
    """Abort direct uploads nobody completed within `HARK_UPLOAD_ABANDON_S`."""
    report = abort_abandoned(settings())
    return {"uploads": len(report.uploads), "orphans": report.orphans}
