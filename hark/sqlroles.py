"""Read-only database logins for analysts, each limited to one tenant.

A role gets USAGE on schema `analytics` and SELECT on its views, nothing on the tables; the views
show a role listed in `sql_roles` only its tenant's rows, a login listed in `sql_app_roles` (the
application's) every tenant, and any other login nothing (migrations 0003, 0009). Deleting the
`sql_roles` row, directly or by deleting the tenant, drops the login (a trigger, 0009). Each login
has a connection limit and a default statement timeout; the timeout is a default the analyst's own
session could raise, so the connection limit is what bounds the load one tenant's analysts put on
the database. Role names and passwords are checked/generated here because DDL cannot take bind
parameters.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from hark.models import SqlRole, Tenant

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def default_role_name(tenant_name: str) -> str:
    return ("hark_ro_" + re.sub(r"[^a-z0-9_]+", "_", tenant_name.lower()))[:63]


def create_role(
    session: Session,
    tenant_name: str,
    role_name: str | None = None,
    statement_timeout_s: float = 60.0,
    connection_limit: int = 4,
) -> tuple[str, str]:
    """Create the login role; returns (role name, generated password)."""
    role = role_name or default_role_name(tenant_name)
    if not ROLE_NAME.fullmatch(role):
        raise ValueError("role names are lower-case letters, digits and _, up to 63 characters")
    tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
    if tenant is None:
        raise ValueError(f"no tenant named {tenant_name!r}")
    password = secrets.token_urlsafe(24)  # [A-Za-z0-9_-] only: safe inside a quoted literal
    database = session.execute(text("SELECT current_database()")).scalar_one()
    timeout_ms, limit = int(statement_timeout_s * 1000), int(connection_limit)
    for statement in (
        f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE"
        f" CONNECTION LIMIT {limit}",
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
        f'GRANT USAGE ON SCHEMA analytics TO "{role}"',
        f'GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO "{role}"',
        # Views a later migration adds (made by the same owner) are readable too.
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO "{role}"',
        f'ALTER ROLE "{role}" SET search_path = analytics',
        f'ALTER ROLE "{role}" SET default_transaction_read_only = on',
        f'ALTER ROLE "{role}" SET statement_timeout = {timeout_ms}',
        f'ALTER ROLE "{role}" SET idle_in_transaction_session_timeout = {timeout_ms}',
    ):
        session.execute(text(statement))
    session.add(SqlRole(role_name=role, tenant_id=tenant.id))
    return role, password


def drop_role(session: Session, role_name: str) -> None:
    if not ROLE_NAME.fullmatch(role_name):
        raise ValueError("not a valid role name")
    # The row's deletion drops a registered login (a trigger, migration 0009); an unregistered one
    # (an orphan from before that migration) is dropped the same way, directly.
    session.execute(text("DELETE FROM sql_roles WHERE role_name = :r"), {"r": role_name})
    session.execute(text("SELECT public.hark_drop_sql_login(:r)"), {"r": role_name})


def connection_url(database_url: str, role: str, password: str) -> str:
    """The DSN an analyst connects with (psql or any PostgreSQL client)."""
    url = make_url(database_url).set(drivername="postgresql", username=role, password=password)
    return url.render_as_string(hide_password=False)
