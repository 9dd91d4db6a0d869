"""Reliability: when each batch task was enqueued and last started (the janitor's evidence of lost
or dead work), and per-segment errors (a poison segment fails alone instead of the whole job).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("job_tasks", sa.Column("enqueued_at", TZ, nullable=False, server_default=sa.func.now()))
    op.add_column("job_tasks", sa.Column("started_at", TZ))
    op.add_column("segments", sa.Column("errors", pg.JSONB))
    op.create_index("job_tasks_pending", "job_tasks", ["job_id"], postgresql_where=sa.text("done_at IS NULL"))


def downgrade() -> None:
    op.drop_index("job_tasks_pending", table_name="job_tasks")
    op.drop_column("segments", "errors")
    op.drop_column("job_tasks", "started_at")
    op.drop_column("job_tasks", "enqueued_at")
