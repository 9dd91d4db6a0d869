"""Sending model work: the one place that turns pending (batch, kind) rows into task messages.

Used by prepare (the first fan-out) and by the janitor (re-sending lost or dead work), so both
follow the same rule: a kind whose engine reads the transcript (text emotion) runs after that
batch's ASR, chained behind it, unless the ASR result is already there.
"""

from __future__ import annotations

from collections import defaultdict

from celery import chain

from hark.queues import INFER, model_priority
from worker.celery_app import app
from worker.engines import engine_class
from worker.tasks.common import engine_name


def send_infer(
    job_id: str,
    pending: list[tuple[int, str]],
    options: dict,
    asr_done: set[int] | frozenset = frozenset(),
    priority: int = 0,
) -> None:
    """Enqueue infer tasks for `pending` (batch_idx, kind) pairs at the job's queue priority (each
    kind at its step of it, hark.queues.model_priority);
    `asr_done` lists batches whose transcript already exists, so their text-reading kinds can run at once."""
    by_batch: dict[int, set[str]] = defaultdict(set)
    for batch_idx, kind in pending:
        by_batch[batch_idx].add(kind)
    for batch_idx, kinds in sorted(by_batch.items()):
        sig = {
            k: app.signature(
                INFER,
                kwargs={"job_id": job_id, "batch_idx": batch_idx, "kind": k},
                immutable=True,
                priority=model_priority(priority, k),
            )
            for k in kinds
        }
        readers = {k for k in kinds if "text" in engine_class(engine_name(k, options)).consumes}
        waiting = readers if "asr" in kinds and batch_idx not in asr_done else set()
        for k in kinds - waiting:
            followers = [sig[f] for f in sorted(waiting)] if k == "asr" else []
            (chain(sig[k], *followers) if followers else sig[k]).apply_async()
