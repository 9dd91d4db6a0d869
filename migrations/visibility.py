"""Who sees which rows of the `analytics` views, from revision 0009 on: a login listed in
`sql_app_roles` (the application's own) sees every tenant, a registered analyst (`sql_roles`) its
tenant, and any other login nothing.

A migration that creates or re-creates an analytics view builds its WHERE clause from `VISIBLE`
(`from migrations.visibility import VISIBLE`; alembic.ini puts the repository root on sys.path),
so no view goes back to an older rule. The text is part of the migrations' history: should the
rule change, a new migration adds a new constant here and rewrites the views, leaving this one as
it is.
"""

# `{col}` is the view's tenant column, e.g. VISIBLE.format(col="j.tenant_id").
VISIBLE = """(
    EXISTS (SELECT 1 FROM public.sql_app_roles a WHERE a.role_name = current_user)
    OR {col} IN (SELECT r.tenant_id FROM public.sql_roles r WHERE r.role_name = current_user)
)"""

# The same first condition as pg_get_viewdef renders it, in place of 0003's "unregistered logins
# see everything" (0009 swaps one for the other in existing views, in both directions).
APP_ROLES_CLAUSE = "(EXISTS ( SELECT 1 FROM public.sql_app_roles a WHERE a.role_name::text = CURRENT_USER))"
