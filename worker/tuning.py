"""Per-process set-up of worker pools: how many threads each process's models use, how a model
process's memory allocator keeps freed memory, and loading a model worker's engines before its
first task.

Two pool processes on a two-core machine that each start a library's default number of threads
(torch: one per core; CTranslate2: 4) run four or more busy threads on two cores, and every
forward pass waits for the slowest. So the thread count is chosen per process: `torch_threads`
when set, else the CPUs this worker may use divided among its pool processes (one where the
models run on a GPU, whose host side needs no more). It is applied to torch, to the BLAS behind
numpy (clustering) and, through `torch.get_num_threads()`, to the engines that take a thread
count (CTranslate2).
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from typing import Any

from celery import signals

from hark.queues import MODEL_KINDS
from hark.settings import Settings

log = logging.getLogger("hark.tuning")

# Filled in by the worker's main process before the pool starts; forked pool processes inherit it.
_pool: dict[str, Any] = {"concurrency": 1, "queues": ()}


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Host threads of a model process whose engines run on a GPU. The host side only prepares
# features and launches kernels, so extra threads do not make it faster; they spin while the GPU
# works and multiply the CPU a GPU pool needs (BENCHMARKS.md, "GPU").
GPU_THREADS = 1


def serves_models(queues: tuple[str, ...]) -> bool:
    """The worker consumes at least one model queue (asr, embed, emotion)."""
    return bool(set(queues) & set(MODEL_KINDS))


def threads_per_process(
    settings: Settings, concurrency: int, queues: tuple[str, ...] = MODEL_KINDS, gpu: bool = False
) -> int:
    """`torch_threads` when set; else one for a process whose models run on a `gpu`, and this
    worker's CPUs shared among its pool processes on a CPU; one for a worker that serves no model
    queue. That one (prepare, clustering, reduce) runs beside the model processes on the same
    cores, where more BLAS threads than free cores only spin waiting for a core, costing CPU
    and slowing the model work beside them."""
    if not serves_models(queues):
        return 1
    if settings.torch_threads > 0:
        return settings.torch_threads
    if gpu:
        return GPU_THREADS
    return max(1, cpus() // max(1, concurrency))


def apply_threads(threads: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)


# glibc's malloc settings for a model process (mallopt parameter numbers from malloc.h). By
# default glibc gives freed memory at the top of its heap back to the kernel once more than a
# little is free, and maps large blocks afresh, so a forward pass faults its buffers in again as
# zeroed pages. Blocks up to 32 MiB (glibc's largest threshold) are taken from the heap instead
# and up to 1 GiB free at its top is kept. A model process does the same large allocations for
# every pass, so keeping them saves page faults and system time without raising its peak RSS.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MODEL_MALLOC = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 1 << 30, M_TOP_PAD: 64 << 20}


def keep_freed_memory(options: dict[int, int] = MODEL_MALLOC) -> bool:
    """Apply `options` with glibc's mallopt; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1 for param, value in options.items())


def tune_process(settings: Settings, concurrency: int, queues: tuple[str, ...], gpu: bool = False) -> int:
    """Threads (and, for a model process, malloc settings) of this process; returns the threads."""
    if serves_models(queues):
        keep_freed_memory()
    threads = threads_per_process(settings, concurrency, queues, gpu)
    apply_threads(threads)
    return threads


@signals.celeryd_after_setup.connect
def _remember_pool(sender: str, instance: Any, **_: object) -> None:
    from worker.tasks.common import settings

    _pool["concurrency"] = int(getattr(instance, "concurrency", 1) or 1)
    _pool["queues"] = tuple(instance.app.amqp.queues.consume_from)
    # The main process too: with `--pool solo` it is the one running the tasks.
    tune_process(settings(), _pool["concurrency"], _pool["queues"])


@signals.worker_process_init.connect
def _init_pool_process(**_: object) -> None:
    from worker.engines import get_engine
    from worker.engines.base import pick_device
    from worker.language import MULTILINGUAL, uses_detector
    from worker.tasks.common import engine_name, settings

    cfg = settings()
    # Asked here, in the pool process, not in the main process before it forks: CUDA must not
    # be initialised in a process that forks the ones using it.
    gpu = serves_models(_pool["queues"]) and pick_device() == "cuda"
    threads = tune_process(cfg, _pool["concurrency"], _pool["queues"], gpu)
    if not cfg.preload_engines:
        return
    for kind in MODEL_KINDS:
        name = engine_name(kind, {})
        if kind not in _pool["queues"] or not name:
            continue
        started = time.monotonic()
        try:
            get_engine(name, cfg)
        except Exception:  # the first task loads it again and fails the job with the reason
            log.exception("engine failed to load", extra={"kind": kind})
            continue
        log.info(
            f"engine {name} loaded, {threads} threads",
            extra={"kind": kind, "seconds": round(time.monotonic() - started, 3)},
        )
    if "asr" in _pool["queues"] and (asr := engine_name("asr", {})) and uses_detector(asr):
        try:  # jobs with language "auto" detect with it (worker/language.py)
            get_engine(MULTILINGUAL, cfg)
        except Exception:
            log.exception("language detector failed to load", extra={"kind": "asr"})
