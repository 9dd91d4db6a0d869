"""The schema exists only through Alembic: upgrade from empty, downgrade to nothing, upgrade again."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, inspect

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


def test_upgrade_downgrade_upgrade(base_settings):
    name = f"hark_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(base_settings.database_url, name)
    try:
        assert tables(url) == set()
        alembic(url, "upgrade", "head")
        assert tables(url) == TABLES
        alembic(url, "downgrade", "base")
        assert tables(url) == set()
        alembic(url, "upgrade", "head")
        assert tables(url) == TABLES
    finally:
        drop_database(base_settings.database_url, name)
