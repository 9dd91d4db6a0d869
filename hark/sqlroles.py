"""Read-only database logins for analysts, each limited to one tenant.

A role gets USAGE on schema `analytics` and SELECT on its views, nothing on the tables; the views
show a role listed in `sql_roles` only its tenant's rows (see migration 0003). Role names and
passwords are checked/generated here because DDL cannot take bind parameters.
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


def create_role(session: Session, tenant_name: str, role_name: str | None = None) -> tuple[str, str]:
    """Create the login role; returns (role name, generated password)."""
    role = role_name or default_role_name(tenant_name)
    if not ROLE_NAME.fullmatch(role):
        raise ValueError("role names are lower-case letters, digits and _, up to 63 characters")
    tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
    if tenant is None:
        raise ValueError(f"no tenant named {tenant_name!r}")
    password = secrets.token_urlsafe(24)  # [A-Za-z0-9_-] only: safe inside a quoted literal
    database = session.execute(text("SELECT current_database()")).scalar_one()
    for statement in (
        f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE",
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
        f'GRANT USAGE ON SCHEMA analytics TO "{role}"',
        f'GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO "{role}"',
        # Views a later migration adds (made by the same owner) are readable too.
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO "{role}"',
        f'ALTER ROLE "{role}" SET search_path = analytics',
        f'ALTER ROLE "{role}" SET default_transaction_read_only = on',
    ):
        session.execute(text(statement))
    session.add(SqlRole(role_name=role, tenant_id=tenant.id))
    return role, password


def drop_role(session: Session, role_name: str) -> None:
    if not ROLE_NAME.fullmatch(role_name):
        raise ValueError("not a valid role name")
    session.execute(text("DELETE FROM sql_roles WHERE role_name = :r"), {"r": role_name})
    session.execute(text(f'DROP OWNED BY "{role_name}"'))
    session.execute(text(f'DROP ROLE "{role_name}"'))


def connection_url(database_url: str, role: str, password: str) -> str:
    """The DSN an analyst connects with (psql or any PostgreSQL client)."""
    url = make_url(database_url).set(drivername="postgresql", username=role, password=password)
    return url.render_as_string(hide_password=False)
