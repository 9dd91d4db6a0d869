"""Leases: how a worker process proves, in PostgreSQL, that it is still running a task.

A task takes a lease (a `task_leases` row) in the same transaction in which it marks its work
begun, and a heartbeat thread in its process renews every lease the process holds every
`heartbeat_s`, pushing its expiry `lease_s` ahead. A worker killed outright (SIGKILL, OOM, a
reclaimed machine) stops renewing, and the janitor re-sends its task once the lease has run out,
within seconds; a task that is merely slow keeps its lease for as long as its process lives.
The database, not the broker, is the witness, so this also survives a Redis restart.

The holder of a lease is the Celery task id: a retry of the task keeps its id and so its lease,
while the janitor sends a re-sent task under a new id. When Redis later hands back the dead
worker's unacknowledged copy, that copy finds the lease held by the live re-sent task (or the
work done) and exits without doing anything, so the work runs once in effect.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import delete, func, text, update
from sqlalchemy.orm import Session

from hark.db import session_scope
from hark.models import TaskLease

log = logging.getLogger("hark.leases")

# Every lease this process holds: (job_id, name) -> holder. The heartbeat renews exactly these.
_held: dict[tuple[uuid.UUID, str], str] = {}
_lock = threading.Lock()
_beat: dict[int, threading.Thread] = {}  # pid -> its heartbeat thread (a forked pool process starts its own)


def process_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire(s: Session, job_id: uuid.UUID, name: str, holder: str, lease_s: float) -> bool:
    """Take the lease `name` of a job for `holder` inside the caller's transaction: granted when
    nobody holds it, its holder went silent (expired), or `holder` already has it (a retry, or the
    broker redelivering the same message). False: another live task holds it; do nothing."""
    row = s.execute(
        text(
            "INSERT INTO task_leases (job_id, name, holder, process, acquired_at, expires_at) "
            "VALUES (:job, :name, :holder, :process, now(), now() + :lease) "
            "ON CONFLICT (job_id, name) DO UPDATE SET holder = excluded.holder, process = excluded.process, "
            "acquired_at = CASE WHEN task_leases.holder = excluded.holder THEN task_leases.acquired_at "
            "ELSE now() END, expires_at = excluded.expires_at "
            "WHERE task_leases.expires_at < now() OR task_leases.holder = excluded.holder "
            "RETURNING holder"
        ),
        {
            "job": job_id,
            "name": name,
            "holder": holder,
            "process": process_label(),
            "lease": timedelta(seconds=lease_s),
        },
    ).first()
    return row is not None


def holds(s: Session, job_id: uuid.UUID, name: str, holder: str) -> bool:
    """Whether `holder` still has the lease, locking its row for the rest of the caller's
    transaction, so the janitor cannot hand it to a re-sent copy before that commits. A task whose
    lease was taken over (its heartbeats failed for longer than the lease, say the database was
    away) must stop writing: the copy now holding it redoes the work."""
    return (
        s.execute(
            text("SELECT holder FROM task_leases WHERE job_id = :job AND name = :name FOR UPDATE"),
            {"job": job_id, "name": name},
        ).scalar()
        == holder
    )


def reserve(s: Session, job_id: uuid.UUID, name: str, holder: str, for_s: float) -> None:
    """Hand the lease to a task just sent (the janitor's re-send) for `for_s`, so that the janitor
    does not send it again while the message waits in its queue, and only that task may take it."""
    s.execute(
        text(
            "INSERT INTO task_leases (job_id, name, holder, process, expires_at) "
            "VALUES (:job, :name, :holder, 'sent', now() + :for) "
            "ON CONFLICT (job_id, name) DO UPDATE SET holder = excluded.holder, process = excluded.process, "
            "acquired_at = now(), expires_at = excluded.expires_at"
        ),
        {"job": job_id, "name": name, "holder": holder, "for": timedelta(seconds=for_s)},
    )


def hold(database_url: str, job_id: uuid.UUID, name: str, holder: str, heartbeat_s: float, lease_s: float) -> None:
    """Start renewing a lease taken with `acquire` (call once its transaction committed)."""
    with _lock:
        _held[(job_id, name)] = holder
        if not (thread := _beat.get(os.getpid())) or not thread.is_alive():
            thread = threading.Thread(
                target=_heartbeat, args=(database_url, heartbeat_s, lease_s), name="lease-heartbeat", daemon=True
            )
            _beat[os.getpid()] = thread
            thread.start()


def let_go(database_url: str, holder: str, grace_s: float = 0.0) -> None:
    """Stop renewing every lease `holder` has. With no grace the rows are deleted (the task ended:
    done, failed for good, or skipped); with grace they expire that many seconds from now (the task
    will be retried after a countdown, by a worker that may die before then). Best effort: with the
    database away the lease simply runs out."""
    with _lock:
        for key in [key for key, h in _held.items() if h == holder]:
            del _held[key]
    try:
        with session_scope(database_url) as s:
            where = (TaskLease.holder == holder,)
            if grace_s > 0:
                s.execute(update(TaskLease).where(*where).values(expires_at=func.now() + timedelta(seconds=grace_s)))
            else:
                s.execute(delete(TaskLease).where(*where))
    except Exception:
        log.warning("could not release a lease", exc_info=True)


def _heartbeat(database_url: str, heartbeat_s: float, lease_s: float) -> None:
    """Renew this process's leases every `heartbeat_s`, for as long as the process lives."""
    while True:
        time.sleep(heartbeat_s)
        with _lock:
            held = list(_held.items())
        if not held:
            continue
        try:
            with session_scope(database_url) as s:
                for (job_id, name), holder in held:
                    s.execute(
                        update(TaskLease)
                        .where(TaskLease.job_id == job_id, TaskLease.name == name, TaskLease.holder == holder)
                        .values(expires_at=func.now() + timedelta(seconds=lease_s))
                    )
        except Exception:
            log.warning("lease heartbeat failed", exc_info=True)
