"""Things every task needs: settings, and which engine serves a kind for a job."""

from __future__ import annotations

import logging
import random
import uuid
from functools import lru_cache
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from hark.settings import Settings
from hark.status import JobStatus

log = logging.getLogger("hark.tasks")


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


def task_job_id(args: tuple, kwargs: dict) -> str | None:
    job_id = kwargs.get("job_id") or (args[0] if args else None)
    return str(job_id) if job_id else None


def job_cancelled(job_id: str) -> bool:
    """True when the job was cancelled (or deleted): its remaining tasks must do nothing."""
    from sqlalchemy.exc import OperationalError

    from hark.db import session_scope
    from hark.models import Job

    try:
        with session_scope(settings().database_url) as s:
            job = s.get(Job, uuid.UUID(job_id))
            return job is None or job.status == JobStatus.CANCELLED
    except OperationalError:
        return False  # database away: let the task start; its own database work retries


def engine_name(kind: str, options: dict) -> str:
    """The engine for a kind of work: the job's own choice, else the deployment's default.
    An empty string (or "none") means the kind is switched off for this job."""
    chosen = (options.get("engines") or {}).get(kind)
    if chosen is None:
        cfg = settings()
        chosen = {"asr": cfg.asr_engine, "embed": cfg.speaker_engine, "emotion": cfg.emotion_engine}[kind]
    return "" if str(chosen).lower() in {"", "none"} else str(chosen)


def planned_kinds(options: dict) -> list[str]:
    """The kinds of model work a job needs: every kind with an engine, except emotion when the
    job's ASR engine already gives emotion in the same pass (SenseVoice) and the job did not name
    an emotion engine of its own. infer() stores the ASR engine's emotion only in that case, so
    the two never write the same columns."""
    from hark.queues import MODEL_KINDS
    from worker.engines import engine_class

    kinds = [k for k in MODEL_KINDS if engine_name(k, options)]
    asr = engine_name("asr", options)
    named = (options.get("engines") or {}).get("emotion")
    if "emotion" in kinds and asr and not named and "emotion" in engine_class(asr).produces:
        kinds.remove("emotion")
    return kinds


def is_broker_error(exc: BaseException) -> bool:
    """The message broker could not be reached (as opposed to a fault of the job or its data)."""
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError

    return isinstance(exc, (BrokerError, RedisConnectionError))


class PermanentError(Exception):
    """An error that retrying cannot fix (bad configuration, missing model files)."""


PERMANENT = (PermanentError, FileNotFoundError, KeyError)


def retry_delay(retries: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Exponential backoff with "equal jitter": at least half of base·2^n, so even unlucky retries
    spread over the outage they wait out (full jitter may retry at once, over and over), and a
    random other half, so a crowd of failed tasks does not come back in step."""
    delay = min(cap, base * 2**retries)
    return delay / 2 + random.uniform(0, delay / 2)


class JobStageTask(Task):
    """Base of every job task: transient errors (S3, database, broker hiccups) are retried with
    exponential backoff and jitter (about 2 minutes in all, enough to ride out a service restart);
    once retries are exhausted, or for a permanent error, the job is marked failed with the task's
    `failure_code`, so no job hangs in a stage."""

    max_retries = 6
    failure_code = "internal_error"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        grace = 0.0  # how long the task's leases outlive it: until its retry is due, and a lease more
        try:
            return super().__call__(*args, **kwargs)
        except PERMANENT:
            raise
        except Exception as exc:
            if self.request.called_directly or self.request.retries >= self.max_retries:
                raise
            countdown = retry_delay(self.request.retries)
            grace = countdown + settings().lease_s
            raise self.retry(exc=exc, countdown=countdown) from exc
        finally:
            from worker import leases

            leases.let_go(settings().database_url, self.lease_holder(), grace)

    def lease_holder(self) -> str:
        """Who holds this task's leases (worker/leases.py): its Celery task id, which a retry
        keeps and a janitor's re-send does not."""
        return str(self.request.id or "called-directly")

    def take_lease(self, s: Any, job_id: uuid.UUID, name: str) -> bool:
        """Take the lease `name` of a job in the caller's transaction (see worker/leases.py);
        False when another live task holds it, and this one must do nothing."""
        from worker import leases

        cfg = settings()
        if not leases.acquire(s, job_id, name, self.lease_holder(), cfg.lease_s):
            log.info("held by another live task; this copy does nothing", extra={"job_id": str(job_id), "task": name})
            return False
        return True

    def keep_lease(self, job_id: uuid.UUID, name: str) -> None:
        """Renew the lease taken with take_lease every heartbeat_s, once its transaction committed."""
        from worker import leases

        cfg = settings()
        leases.hold(cfg.database_url, job_id, name, self.lease_holder(), cfg.heartbeat_s, cfg.lease_s)

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        job_id = kwargs.get("job_id") or (args[0] if args else None)
        if not job_id:
            return
        if is_broker_error(exc):
            # A retry is itself a broker message, so while the broker is away the task cannot be
            # retried; the job is not broken, and the janitor sends the work again once it is back.
            log.warning(
                "broker unreachable; left to the janitor", extra={"job_id": job_id, "code": "broker_unavailable"}
            )
            return
        from hark.db import session_scope
        from hark.jobstate import fail

        log.error("task failed for good", extra={"job_id": job_id, "code": self.failure_code})
        with session_scope(settings().database_url) as s:
            fail(s, uuid.UUID(str(job_id)), self.failure_code, f"{type(exc).__name__}: {exc}")

    def before_start(self, task_id: str, args: tuple, kwargs: dict) -> None:
        """A cancelled job's queued tasks still arrive: drop each before it does any work.
        Ignore acknowledges the message and sends no chained follower."""
        job_id = task_job_id(args, kwargs)
        if job_id and job_cancelled(job_id):
            log.info("job cancelled, task skipped", extra={"job_id": job_id, "task": self.name})
            raise Ignore()

    def after_return(self, status: str, retval: Any, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        """A job that just finished (done or failed) with a callback URL gets its webhook enqueued;
        the delivery row's unique (job, event) makes this once per job whichever task sees it."""
        job_id = task_job_id(args, kwargs)
        if not job_id:
            return
        from sqlalchemy.exc import OperationalError

        from hark.db import session_scope
        from hark.webhooks import WEBHOOK, claim_delivery

        try:
            with session_scope(settings().database_url) as s:
                delivery_id = claim_delivery(s, uuid.UUID(job_id))
        except OperationalError:
            return  # database away; the next task of the job, or the janitor's, claims it later
        if delivery_id is not None:
            self.app.send_task(WEBHOOK, args=[delivery_id])
