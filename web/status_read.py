"""The status poll's read: one prepared statement on a database connection this process keeps.

Clients poll each job of an archive every few seconds, so `GET /v1/jobs/<id>` is the API's
hottest path. Through an ORM session a poll cost about 1.2 ms of CPU before any JSON was made: a
session, a pool checkout with its ping, and 30 columns loaded into a mapped object. Here each
process (and thread) keeps one autocommit psycopg connection, the statement is prepared on the
server once, and the row comes back as plain values: about a quarter of that. The statement is
still the one SQLAlchemy builds from the models (`status_query`), compiled once, so the job's
columns and the task counts keep a single definition.

A connection the server dropped (restart, idle timeout) is replaced and the read retried once;
a fork gets a connection of its own (the parent's is left alone), and a thread's connection
closes when the thread ends and its reference goes. Anything else surfaces as psycopg's error (503 while the
database is unreachable, see web/errors.py).
"""
from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psycopg
from sqlalchemy import Select, bindparam, exists, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.sql import select

from hark.models import Job, Segment
from web.progress import TaskCounts, counts_from_row, counts_query

# How the reader's connections show in pg_stat_activity.
APPLICATION_NAME = "hark-status"


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


class StatusReader:
    """Reads one job's status row for one tenant; one instance per app, one connection per thread."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        stmt = status_query()
        compiled = stmt.compile(dialect=postgresql.psycopg.dialect())
        self._sql = str(compiled)
        self._constants = {k: v for k, v in compiled.params.items() if k not in ("job_id", "tenant_id")}
        self._job_columns = [c.key for c in Job.__table__.c]
        self._local = threading.local()

    def read(self, job_id: uuid.UUID, tenant_id: uuid.UUID) -> JobStatus | None:
        params = {**self._constants, "job_id": job_id, "tenant_id": tenant_id}
        try:
            row = self._connection().execute(self._sql, params).fetchone()
        except psycopg.OperationalError:
            # Most often a connection the server closed while this process was idle: once more
            # on a fresh one; if the database is really away, that attempt raises too.
            self._discard()
            row = self._connection().execute(self._sql, params).fetchone()
        if row is None:
            return None
        n = len(self._job_columns)
        job = SimpleNamespace(**dict(zip(self._job_columns, row[:n])))
        return JobStatus(job=job, any_failed=bool(row[n]), counts=counts_from_row(row[n + 1:]))

    def _connection(self) -> psycopg.Connection[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and self._local.pid == os.getpid():
            return conn
        # prepare_threshold=0: the statement is prepared on its first run, not its sixth.
        conn = psycopg.connect(
            self._conninfo, autocommit=True, prepare_threshold=0, connect_timeout=5, application_name=APPLICATION_NAME
        )
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.__dict__.clear()
        if conn is not None:
            conn.close()
