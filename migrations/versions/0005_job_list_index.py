"""The job list's index covers its whole sort key (tenant, created_at, id).

Keyset pagination orders by (created_at, id). With an index on (tenant_id, created_at) alone,
jobs created in one transaction (a batch submission) share created_at, and every page sorted all
of them again; with id in the index a page reads only its own rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("jobs_tenant_created_id", "jobs", ["tenant_id", "created_at", "id"])
    op.drop_index("jobs_tenant_created", table_name="jobs")


def downgrade() -> None:
    op.create_index("jobs_tenant_created", "jobs", ["tenant_id", "created_at"])
    op.drop_index("jobs_tenant_created_id", table_name="jobs")
