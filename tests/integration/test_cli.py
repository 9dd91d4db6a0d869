"""`hark keys create|list|revoke` and `hark sql-role create|drop`, run as commands against the
session's database."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest

from hark.apikeys import authenticate
from hark.db import session_scope
from tests.conftest import ROOT, settings_env

pytestmark = pytest.mark.integration


def hark(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hark.cli", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_create_list_revoke(settings):
    tenant = f"cli-{uuid.uuid4().hex[:6]}"
    made = hark(settings, "keys", "create", "--tenant", tenant, "--scope", "read", "--name", "analyst")
    assert made.returncode == 0
    secret = made.stdout.strip()
    with session_scope(settings.database_url) as s:
        principal = authenticate(s, secret)
    assert principal is not None and principal.scope == "read"
    listed = hark(settings, "keys", "list", "--tenant", tenant).stdout
    assert str(principal.key_id) in listed and secret[:12] in listed and secret not in listed and "live" in listed
    assert hark(settings, "keys", "revoke", secret[:12]).returncode == 0
    with session_scope(settings.database_url) as s:
        assert authenticate(s, secret) is None
    assert "revoked" in hark(settings, "keys", "list", "--tenant", tenant).stdout
    assert hark(settings, "keys", "revoke", secret[:12]).returncode == 1


def test_sql_role_create_and_drop(settings):
    tenant = f"cli-{uuid.uuid4().hex[:6]}"
    assert hark(settings, "keys", "create", "--tenant", tenant).returncode == 0
    assert hark(settings, "sql-role", "create", "--tenant", "no-such-tenant").returncode == 2
    made = hark(settings, "sql-role", "create", "--tenant", tenant)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    role = url.split("//")[1].split(":")[0]
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM meetings").fetchone() == (0,)  # search_path is analytics
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM public.jobs")
    finally:
        assert hark(settings, "sql-role", "drop", role).returncode == 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url).close()
