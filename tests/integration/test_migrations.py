"""The schema exists only through Alembic: upgrade from empty, downgrade to nothing, upgrade again."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import alembic, create_database, drop_database

pytestmark = pytest.mark.integration

TABLES = {
    "tenants",
    "api_keys",
    "jobs",
    "segments",
    "embeddings",
    "speakers",
    "job_tasks",
    "batches",
    "uploads",
    "sql_roles",
    "sql_app_roles",
    "webhook_deliveries",
    "webhook_attempts",
    "task_leases",
    "voices",
    "voice_samples",
    "speaker_turns",
}


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def open_views(url: str) -> list[str]:
    """Analytics views still showing every tenant to a login absent from sql_roles (0003's rule,
    which 0006 and 0008 re-create and 0009 closes)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            defs = conn.execute(
                text(
                    "SELECT c.relname, pg_get_viewdef(c.oid, true) FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = 'analytics' AND c.relkind = 'v'"
                )
            ).all()
    finally:
        engine.dispose()
    assert defs, "no analytics views"
    return sorted(name for name, body in defs if "sql_app_roles" not in body)


def test_upgrade_downgrade_upgrade(base_settings):
    name = f"hark_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(base_settings.database_url, name)
    try:
        assert tables(url) == set()
        alembic(url, "upgrade", "head")
        assert tables(url) == TABLES
        assert open_views(url) == []
        alembic(url, "downgrade", "0005")  # below the views the later revisions re-create
        assert "sql_app_roles" not in tables(url) and open_views(url)
        alembic(url, "upgrade", "head")
        assert open_views(url) == []
        alembic(url, "downgrade", "base")
        assert tables(url) == set()
        alembic(url, "upgrade", "head")
        assert tables(url) == TABLES
    finally:
        drop_database(base_settings.database_url, name)
