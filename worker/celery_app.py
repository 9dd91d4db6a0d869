"""The workers' Celery app. Start a pool with, for example:

    celery -A worker.celery_app worker -Q cpu            # prepare + reduce
    celery -A worker.celery_app worker -Q asr,embed,emotion  # model work
"""
from __future__ import annotations

import worker.metrics  # noqa: F401  (first: it must choose the metrics directory before anything else)
import worker.tuning  # noqa: F401  (threads and engine preloading per pool process)
from hark.logs import configure_logging
from hark.queues import make_celery
from hark.settings import Settings

configure_logging()
app = make_celery(Settings.from_env(), name="hark-worker")
app.conf.imports = (
    "worker.tasks.prepare", "worker.tasks.infer", "worker.tasks.reduce", "worker.tasks.janitor", "worker.tasks.webhooks",
)
