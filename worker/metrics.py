"""Prometheus metrics of a worker node: how long tasks take (per task, kind and outcome), how often
they fail and why, and each engine's real-time factor (compute seconds per audio second).

A Celery worker is one main process and a pool of forked children that run the tasks, so the
children record into prometheus_client's multiprocess files and the main process serves them all
on `HARK_METRICS_PORT` (0, the default, turns this off). The directory has to be chosen before
prometheus_client is first imported, which is why this module is imported first by the Celery app.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from celery import signals

from hark.settings import Settings

PORT = Settings.from_env().metrics_port
if PORT and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hark-metrics-")

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, start_http_server  # noqa: E402

TASK_SECONDS = Histogram(
    "hark_task_seconds",
    "Wall seconds per task run",
    ["task", "kind", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
TASK_FAILURES = Counter("hark_task_failures", "Task runs that raised, per exception type", ["task", "kind", "error"])
ENGINE_RTF = Histogram(
    "hark_engine_rtf",
    "Engine compute seconds per second of audio, per batch",
    ["engine", "kind"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
ENGINE_AUDIO = Counter("hark_engine_audio_seconds", "Seconds of audio processed per engine", ["engine", "kind"])

_started: dict[str, float] = {}


def observe_engine(engine: str, kind: str, audio_s: float, compute_s: float) -> None:
    """Record one batch of model work (called by the infer task)."""
    if audio_s > 0:
        ENGINE_RTF.labels(engine, kind).observe(compute_s / audio_s)
        ENGINE_AUDIO.labels(engine, kind).inc(audio_s)


@signals.task_prerun.connect
def _task_started(task_id: str, **_: object) -> None:
    _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _task_finished(task_id: str, task: Any, kwargs: dict | None = None, state: str | None = None, **_: object) -> None:
    began = _started.pop(task_id, None)
    if began is not None:
        kind = (kwargs or {}).get("kind", "")
        TASK_SECONDS.labels(task.name, kind, (state or "unknown").lower()).observe(time.monotonic() - began)


@signals.task_failure.connect
def _task_failed(
    sender: Any = None, exception: BaseException | None = None, kwargs: dict | None = None, **_: object
) -> None:
    TASK_FAILURES.labels(getattr(sender, "name", "?"), (kwargs or {}).get("kind", ""), type(exception).__name__).inc()


@signals.worker_init.connect
def _serve(**_: object) -> None:
    if PORT:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(PORT, registry=registry)


@signals.worker_process_shutdown.connect
def _child_exit(pid: int | None = None, **_: object) -> None:
    if PORT:
        multiprocess.mark_process_dead(pid or os.getpid())
