"""The polling reads (a job's status, the job list) on a database connection this process keeps.

Clients poll each job of an archive every few seconds, and consoles list them, so these are the
API's hottest reads. Through an ORM session a status poll cost about 1.2 ms of CPU before any JSON
was made: a session, a pool checkout with its ping, and 30 columns loaded into a mapped object.
Here each process keeps a few autocommit psycopg connections, each statement is prepared on the
server once per connection, and rows come back as plain values: about a quarter of that. The
statements are still built by SQLAlchemy from the models and compiled once (`Compiled`), so the
columns and the task counts keep a single definition.

A connection the server dropped (restart, idle timeout) is replaced and the read retried once; a
fork gets connections of its own (the parent's are left alone). Anything else surfaces as
psycopg's error (503 while the database is unreachable, see web/errors.py).
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import psycopg
from sqlalchemy import Select, bindparam, exists, true, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.sql import select

from hark.models import Job, Segment
from web.progress import TaskCounts, counts_from_row, counts_query

# How the reader's connections show in pg_stat_activity.
APPLICATION_NAME = "hark-status"
_DIALECT = postgresql.psycopg.dialect()


class Compiled:
    """A SELECT compiled once for psycopg: its SQL, the values SQLAlchemy bound itself (constants
    such as a coalesce's 0), and its columns' names."""

    def __init__(self, stmt: Select) -> None:
        compiled = stmt.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self.constants = dict(compiled.params)
        self.columns: list[str] = [str(c.key) for c in stmt.selected_columns]


class KeptConnection:
    """Runs compiled reads on a few autocommit connections this process keeps, shared by its
    threads: a threaded web worker (web/serving.py) has dozens of threads, most of them waiting on
    clients; a connection each would be dozens per process, and PostgreSQL's connection limit
    would be reached at a handful of pods. At most `size` reads run at once; a thread finding
    every connection busy waits for one (a read takes about a millisecond)."""

    def __init__(self, database_url: str, size: int = 4) -> None:
        self._conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[Any]] = []
        self._pid = os.getpid()

    def rows(self, query: Compiled, **params: Any) -> list[tuple[Any, ...]]:
        values = {**query.constants, **params}
        with self._slots:
            conn = self._checkout()
            try:
                rows = conn.execute(query.sql, values).fetchall()
            except psycopg.OperationalError:
                # Most often a connection the server closed while this process was idle: once
                # more on a fresh one; if the database is really away, that attempt raises too.
                conn.close()
                conn = self._connect()
                try:
                    rows = conn.execute(query.sql, values).fetchall()
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                conn.close()
                raise
            with self._lock:
                self._idle.append(conn)
            return rows

    def _checkout(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._pid != os.getpid():
                # A fork: the parent's connections stay the parent's (not closed from here).
                self._idle, self._pid = [], os.getpid()
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        # prepare_threshold=0: each statement is prepared on its first run, not its sixth.
        return psycopg.connect(
            self._conninfo, autocommit=True, prepare_threshold=0, connect_timeout=5, application_name=APPLICATION_NAME
        )


def status_query() -> Select[Any]:
    """A job's columns, whether any of its segments failed, and its task counts, in one row."""
    counts = counts_query(Job.id).lateral("counts")
    any_failed = exists().where(Segment.job_id == Job.id, Segment.errors.is_not(None)).label("any_failed")
    return (
        select(*Job.__table__.c, any_failed, *counts.c)
        .join(counts, true())
        .where(Job.id == bindparam("job_id"), Job.tenant_id == bindparam("tenant_id"))
    )


@dataclass
class JobStatus:
    """What a poll needs: the job's columns as attributes (what `job_view` reads off a Job)."""

    job: SimpleNamespace
    any_failed: bool
    counts: TaskCounts


@lru_cache(maxsize=1)
def _status() -> Compiled:
    return Compiled(status_query())


def read_status(reader: KeptConnection, job_id: uuid.UUID, tenant_id: uuid.UUID) -> JobStatus | None:
    rows = reader.rows(_status(), job_id=job_id, tenant_id=tenant_id)
    if not rows:
        return None
    row, n = rows[0], len(Job.__table__.c)
    job = SimpleNamespace(**dict(zip(_status().columns[:n], row[:n])))
    return JobStatus(job=job, any_failed=bool(row[n]), counts=counts_from_row(row[n + 1 :]))


# What a list item shows (web/job_actions.py job_summary), and the filters a listing may combine.
LIST_COLUMNS = (
    Job.id,
    Job.status,
    Job.filename,
    Job.duration_s,
    Job.error_code,
    Job.error_message,
    Job.created_at,
    Job.finished_at,
)
LIST_FILTERS = ("status", "batch_id", "created_after", "created_before", "cursor")


@lru_cache(maxsize=2 ** len(LIST_FILTERS))
def list_query(filters: frozenset[str]) -> Compiled:
    """The tenant's jobs, newest first, with the given filters as parameters of the same names
    (`cursor` as `cursor_created_at` and `cursor_id`) and `limit`; one compiled form per set."""
    stmt = select(*LIST_COLUMNS).where(Job.tenant_id == bindparam("tenant_id"))
    if "status" in filters:
        stmt = stmt.where(Job.status == bindparam("status"))
    if "batch_id" in filters:
        stmt = stmt.where(Job.batch_id == bindparam("batch_id"))
    if "created_after" in filters:
        stmt = stmt.where(Job.created_at >= bindparam("created_after"))
    if "created_before" in filters:
        stmt = stmt.where(Job.created_at < bindparam("created_before"))
    if "cursor" in filters:
        stmt = stmt.where(
            tuple_(Job.created_at, Job.id) < tuple_(bindparam("cursor_created_at"), bindparam("cursor_id"))
        )
    return Compiled(stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(bindparam("limit")))


def read_list(reader: KeptConnection, tenant_id: uuid.UUID, limit: int, **filters: Any) -> list[SimpleNamespace]:
    """Up to `limit` jobs as attribute rows; `filters` are LIST_FILTERS (cursor: (created_at, id))."""
    query = list_query(frozenset(filters))
    params: dict[str, Any] = {k: v for k, v in filters.items() if k != "cursor"}
    if "cursor" in filters:
        params["cursor_created_at"], params["cursor_id"] = filters["cursor"]
    rows = reader.rows(query, tenant_id=tenant_id, limit=limit, **params)
    return [SimpleNamespace(**dict(zip(query.columns, row))) for row in rows]
