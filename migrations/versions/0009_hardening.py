"""Hardening: analysts' views show nothing to a login they do not know; deleting a tenant drops its
SQL logins; analysts' logins get a statement timeout and a connection limit; webhook secrets can be
rotated with a grace period.

Until now a login absent from `sql_roles` saw every tenant (meant for the application's own login),
so an orphaned analyst login (its tenant deleted, the `sql_roles` row cascaded away, the PostgreSQL
role left behind) saw everything. Now the logins that see every tenant are listed explicitly in
`sql_app_roles` (the login running this migration is entered; an application running under another
login is added there by the operator), a registered analyst sees its tenant, and anyone else sees
no rows. A trigger drops the PostgreSQL login whenever its `sql_roles` row goes, by
`hark sql-role drop` or by a tenant's deletion cascading.

The views are rewritten from their current definitions (only the visibility clause changes), so
columns added by other migrations are kept. This runs after 0006 and 0008, which (re-)create views
with 0003's clause; a later migration that creates a view takes its clause from
`migrations/visibility.py`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import re

import sqlalchemy as sa
from alembic import op

from migrations.visibility import APP_ROLES_CLAUSE

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# pg_get_viewdef's rendering of 0003's "unregistered logins see everything" clause.
OPEN_CLAUSE = re.compile(
    r"NOT \(EXISTS \( SELECT 1\s+FROM (?:public\.)?sql_roles r\s+WHERE r\.role_name::text = CURRENT_USER\)\)"
)
CLOSED_RENDERED = re.compile(
    r"\(?EXISTS \( SELECT 1\s+FROM (?:public\.)?sql_app_roles a\s+WHERE a\.role_name::text = CURRENT_USER\)\)?"
)
REOPENED_CLAUSE = "NOT (EXISTS ( SELECT 1 FROM public.sql_roles r WHERE r.role_name::text = CURRENT_USER))"

# Analysts' limits for logins that exist already (new ones take them from settings, hark/sqlroles.py).
STATEMENT_TIMEOUT = "60s"
CONNECTION_LIMIT = 4

# Dropping an analyst's login with the rights the application's own (non-superuser, CREATEROLE)
# login has: revoke exactly what hark/sqlroles.py granted, then drop. Should the login still hold
# something else (granted by another login), it is made NOLOGIN instead, so deleting a tenant never
# fails on it and the login can no longer connect either way.
DROP_LOGIN = """
CREATE FUNCTION public.hark_drop_sql_login(login text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login) THEN
        RETURN;
    END IF;
    BEGIN
        PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = login;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;  -- its sessions end on their own; unregistered, they see no rows meanwhile
    END;
    BEGIN
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA analytics FROM %I', login);
        EXECUTE format('REVOKE ALL ON SCHEMA analytics FROM %I', login);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA analytics REVOKE ALL ON TABLES FROM %I', login);
        EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), login);
        EXECUTE format('DROP ROLE %I', login);
    EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege THEN
        EXECUTE format('ALTER ROLE %I NOLOGIN', login);
        RAISE WARNING 'login % could not be dropped (it holds other rights); it can no longer log in', login;
    END;
END $$;

CREATE FUNCTION public.hark_sql_roles_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM public.hark_drop_sql_login(OLD.role_name);
    RETURN OLD;
END $$;
"""


def _rewrite_views(pattern: re.Pattern[str], replacement: str) -> None:
    conn = op.get_bind()
    views = conn.execute(
        sa.text(
            "SELECT c.relname, pg_get_viewdef(c.oid, true) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'analytics' AND c.relkind = 'v'"
        )
    ).all()
    for name, body in views:
        new_body, count = pattern.subn(replacement, body)
        if "sql_roles" in body and not count:
            raise RuntimeError(f"analytics.{name}: visibility clause not recognised; rewrite it by hand")
        if count:
            op.execute(f"CREATE OR REPLACE VIEW analytics.{name} WITH (security_barrier) AS {new_body.rstrip(';')}")


def _alter_analyst_roles(options: str) -> None:
    conn = op.get_bind()
    for (role,) in conn.execute(
        sa.text("SELECT role_name FROM sql_roles r JOIN pg_roles p ON p.rolname = r.role_name")
    ):
        op.execute(f'ALTER ROLE "{role}" {options}')


def upgrade() -> None:
    op.create_table(
        "sql_app_roles",
        sa.Column("role_name", sa.String(63), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute("INSERT INTO sql_app_roles (role_name) VALUES (current_user)")
    _rewrite_views(OPEN_CLAUSE, APP_ROLES_CLAUSE)
    op.execute(DROP_LOGIN)
    op.execute(
        "CREATE TRIGGER sql_roles_drop_login AFTER DELETE ON sql_roles "
        "FOR EACH ROW EXECUTE FUNCTION public.hark_sql_roles_deleted()"
    )
    _alter_analyst_roles(f"CONNECTION LIMIT {CONNECTION_LIMIT}")
    _alter_analyst_roles(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    _alter_analyst_roles(f"SET idle_in_transaction_session_timeout = '{STATEMENT_TIMEOUT}'")
    op.add_column("tenants", sa.Column("webhook_secret_previous", sa.String(128)))
    op.add_column("tenants", sa.Column("webhook_secret_rotated_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("tenants", "webhook_secret_rotated_at")
    op.drop_column("tenants", "webhook_secret_previous")
    _alter_analyst_roles("CONNECTION LIMIT -1")
    _alter_analyst_roles("RESET statement_timeout")
    _alter_analyst_roles("RESET idle_in_transaction_session_timeout")
    op.execute("DROP TRIGGER sql_roles_drop_login ON sql_roles")
    op.execute("DROP FUNCTION public.hark_sql_roles_deleted()")
    op.execute("DROP FUNCTION public.hark_drop_sql_login(text)")
    _rewrite_views(CLOSED_RENDERED, REOPENED_CLAUSE)
    op.drop_table("sql_app_roles")
