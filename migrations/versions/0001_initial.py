"""Initial schema: tenants, api_keys, jobs (status state machine), segments, embeddings, speakers, job_tasks.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = ("uploading", "queued", "preparing", "inferring", "reducing", "done", "failed", "cancelled")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False, server_default="admin"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", TZ),
        sa.CheckConstraint("scope IN ('admin', 'submit', 'read')", name="api_keys_scope_valid"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("status", sa.String(16), nullable=False, server_default="uploading", index=True),
        sa.Column("filename", sa.String(500), nullable=False, server_default=""),
        sa.Column("source_key", sa.String(1000), nullable=False, server_default=""),
        sa.Column("sha256", sa.String(64)),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("duration_s", sa.Float),
        sa.Column("options", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("segments_total", sa.Integer),
        sa.Column("tasks_total", sa.Integer),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("timings", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("priority", sa.Integer, nullable=False, server_default="5"),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="jobs_status_valid"),
    )
    op.create_index("jobs_tenant_created", "jobs", ["tenant_id", "created_at"])
    op.create_table(
        "segments",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("start_s", sa.Float, nullable=False),
        sa.Column("end_s", sa.Float, nullable=False),
        sa.Column("speaker", sa.String(32)),
        sa.Column("text", sa.Text),
        sa.Column("language", sa.String(16)),
        sa.Column("confidence", sa.Float),
        sa.Column("words", pg.JSONB),
        sa.Column("emotion", sa.String(16)),
        sa.Column("emotion_scores", pg.JSONB),
        sa.Column("emotion_source", sa.String(32)),
        sa.Column("events", pg.JSONB),
        sa.UniqueConstraint("job_id", "idx", name="segments_job_idx"),
        sa.CheckConstraint("start_s >= 0 AND end_s > start_s", name="segments_time_order"),
    )
    op.create_table(
        "embeddings",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("segment_id", sa.BigInteger, sa.ForeignKey("segments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("win_idx", sa.Integer, nullable=False),
        sa.Column("start_s", sa.Float, nullable=False),
        sa.Column("end_s", sa.Float, nullable=False),
        sa.Column("vector", pg.ARRAY(sa.REAL), nullable=False),
        sa.UniqueConstraint("segment_id", "win_idx", name="embeddings_segment_win"),
    )
    op.create_table(
        "speakers",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("speech_s", sa.Float, nullable=False),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("centroid", pg.ARRAY(sa.REAL)),
        sa.UniqueConstraint("job_id", "label", name="speakers_job_label"),
    )
    op.create_table(
        "job_tasks",
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("batch_idx", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("first_idx", sa.Integer, nullable=False),
        sa.Column("last_idx", sa.Integer, nullable=False),
        sa.Column("speech_s", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done_at", TZ),
    )


def downgrade() -> None:
    for table in ("job_tasks", "speakers", "embeddings", "segments", "jobs", "api_keys", "tenants"):
        op.drop_table(table)
