"""Queues, task names and routing: the one place that says which work goes where.

The web process only sends tasks by name (it never imports the worker or its engines); the
workers register the implementations under the same names. Both build their Celery app here so
they share one routing table and one set of delivery guarantees.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from hark.settings import Settings

PREPARE = "hark.prepare"
INFER = "hark.infer"
REDUCE = "hark.reduce"
DIARIZE = "hark.diarize"
JANITOR = "hark.janitor"
ABORT_ABANDONED_UPLOADS = "hark.abort_abandoned_uploads"

# Message priority on the Redis transport: 0 is served first. Each queue is really one Redis list
# per step, and a worker pops the lists in step order, so an interactive job's tasks overtake a
# night's archive already waiting in the same queue. Messages without a priority (reduce, which
# finishes work already in flight) count as 0.
PRIORITIES = {"interactive": 0, "overnight": 9}
# Each job priority has two steps, so that within it speaker embeddings go ahead of the rest of
# the model work (see model_priority); the broker accepts 0-9.
PRIORITY_STEPS = [0, 1, 8, 9]

CPU_QUEUE = "cpu"
# Webhook deliveries wait on receivers outside our control; on their own queue (and worker), a
# receiver that never answers cannot hold the CPU pool that prepares and reduces jobs.
WEBHOOK_QUEUE = "webhooks"
WEBHOOK = "hark.webhook"
MODEL_KINDS = ("asr", "embed", "emotion")  # each kind of model work has a queue of that name


def model_priority(job_priority: int, kind: str) -> int:
    """The broker priority of a job's model task of `kind`. Speaker embedding goes one step ahead
    of ASR and emotion of the same job priority: it is the cheap quarter of the model work, and
    clustering can only start once every embedding is stored. Served first, the embeddings are
    done while ASR still runs, so the clustering overlaps ASR instead of following the last ASR
    batch. A worker pops every queue's first step before any queue's second,
    so the order holds across the asr and embed queues."""
    base = 0 if job_priority < PRIORITY_STEPS[2] else PRIORITY_STEPS[2]
    return base if kind == "embed" else base + 1


def route(
    name: str, args: tuple, kwargs: dict[str, Any], options: dict[str, Any], task: Any = None, **kw: Any
) -> dict[str, str]:
    """prepare, diarize and reduce run on the CPU pool; model work goes to the queue named for its
    kind; webhooks to their own."""
    if name == WEBHOOK:
        return {"queue": WEBHOOK_QUEUE}
    if name == INFER:
        kind = kwargs.get("kind")
        if kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {kind!r}")
        return {"queue": kind}
    return {"queue": CPU_QUEUE}


def make_celery(settings: Settings, name: str = "hark") -> Celery:
    app = Celery(name, broker=settings.broker_url)
    transport: dict[str, Any] = {"visibility_timeout": 4 * 3600, "priority_steps": PRIORITY_STEPS}
    if settings.broker_key_prefix:
        transport["global_keyprefix"] = settings.broker_key_prefix
    app.conf.update(
        task_routes=(route,),
        task_default_queue=CPU_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # At-least-once delivery: a task is acknowledged only after it finished, and requeued when
        # its worker dies; every task is idempotent, so running twice is safe.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A pool process that grew past this (KiB) is replaced after its task, so a pathological
        # file cannot leave a worker holding gigabytes for the rest of the night.
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Run by `celery beat` (or a worker started with -B), which also runs the janitor's sweep
        # in a thread of its own (worker/celery_app.py), so it never waits in a queue.
        beat_schedule={
            "abort-abandoned-uploads": {"task": ABORT_ABANDONED_UPLOADS, "schedule": 600.0},
        },
    )
    return app


def queue_depths(app: Celery, prefix: str = "") -> dict[str, int]:
    """Messages waiting per queue (not counting those a worker has taken). kombu keeps one Redis list
    per queue, plus one per priority step (`<queue>\\x06\\x16<n>`) when priorities are used."""
    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        client = conn.default_channel.client
        for queue in (CPU_QUEUE, *MODEL_KINDS, WEBHOOK_QUEUE):
            keys = [f"{prefix}{queue}".encode(), *client.scan_iter(match=f"{prefix}{queue}\x06\x16*".encode())]
            depths[queue] = sum(int(client.llen(k)) for k in keys)
    return depths
