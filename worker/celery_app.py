"""The workers' Celery app. Start a pool with, for example:

celery -A worker.celery_app worker -Q cpu            # prepare + reduce
celery -A worker.celery_app worker -Q asr,embed,emotion  # model work
"""

from __future__ import annotations

from typing import Any

from celery import signals

import worker.metrics  # first: it must choose the metrics directory before anything else
import worker.tuning  # noqa: F401  (threads and engine preloading per pool process)
from hark.logs import configure_logging
from hark.queues import make_celery
from hark.settings import Settings

configure_logging()
app = make_celery(Settings.from_env(), name="hark-worker")
app.conf.imports = (
    "worker.tasks.prepare",
    "worker.tasks.infer",
    "worker.tasks.reduce",
    "worker.tasks.janitor",
    "worker.tasks.webhooks",
)


@signals.beat_init.connect
def _start_janitor(sender: object, **kwargs: object) -> None:
    """celery beat (standalone, or embedded in a worker started with -B) runs the janitor's sweep
    in a thread of its own every janitor_interval_s: as a message it would wait behind a long
    prepare on a busy cpu queue, and recovering a dead worker's work must not."""
    import threading

    from worker.tasks.janitor import run_forever

    threading.Thread(target=run_forever, name="janitor", daemon=True).start()


@signals.celeryd_after_setup.connect
def _check_model_files(sender: str, instance: Any, **kwargs: Any) -> None:
    """A worker consuming model queues verifies, before it takes any task, that the default engine
    of each kind it serves has its model files (e.g. HARK_SENSEVOICE_DIR): a missing directory
    stops it at start with the path in the message, instead of failing every job later."""
    from hark.queues import CPU_QUEUE, MODEL_KINDS
    from worker.engines import check_engines, get_vad
    from worker.tasks.common import engine_name

    queues = set(instance.app.amqp.queues.consume_from or ())
    cfg = Settings.from_env()
    try:
        check_engines(cfg, [name for k in MODEL_KINDS if k in queues and (name := engine_name(k, {}))])
        if CPU_QUEUE in queues:  # prepare runs there, with the VAD HARK_VAD_ENGINE names
            get_vad(cfg)
    except (FileNotFoundError, KeyError) as exc:
        # Celery logs and swallows exceptions raised by signal handlers; SystemExit is not one.
        raise SystemExit(f"worker not started: {exc}") from exc
