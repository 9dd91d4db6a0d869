"""Direct uploads, archive batches, dedupe index and in-stage progress columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("priority", sa.Integer, nullable=False, server_default="9"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.add_column(
        "jobs", sa.Column("batch_id", pg.UUID(as_uuid=True), sa.ForeignKey("batches.id", ondelete="SET NULL"))
    )
    op.create_index("ix_jobs_batch_id", "jobs", ["batch_id"])
    op.create_index("jobs_tenant_sha256", "jobs", ["tenant_id", "sha256"])
    op.add_column("jobs", sa.Column("stage_started_at", TZ))
    op.add_column("jobs", sa.Column("declared_duration_s", sa.Float))
    op.add_column("jobs", sa.Column("decoded_s", sa.Float))
    op.create_table(
        "uploads",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, unique=True
        ),
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("s3_upload_id", sa.String(1000), nullable=False),
        sa.Column("part_bytes", sa.BigInteger, nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open", index=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.CheckConstraint("status IN ('open', 'completed', 'aborted')", name="uploads_status_valid"),
    )


def downgrade() -> None:
    op.drop_table("uploads")
    op.drop_column("jobs", "decoded_s")
    op.drop_column("jobs", "declared_duration_s")
    op.drop_column("jobs", "stage_started_at")
    op.drop_index("jobs_tenant_sha256", table_name="jobs")
    op.drop_index("ix_jobs_batch_id", table_name="jobs")
    op.drop_column("jobs", "batch_id")
    op.drop_table("batches")
