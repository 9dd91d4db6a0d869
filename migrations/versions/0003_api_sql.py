"""Analysts' SQL views, tenant-scoped read-only roles, webhooks, job callback/idempotency.

The views live in schema `analytics`. Each one filters rows through `sql_roles`: a role listed
there (made by `hark sql-role create`) sees only its tenant; roles not listed (the application's
own) see every tenant and filter by `tenant_id` themselves. Views run with their owner's table
rights, so a read-only role needs (and gets) SELECT on the views alone, never on the tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

# Rows a connection may see: its tenant when it is a registered analyst role, everything otherwise.
VISIBLE = """(
    NOT EXISTS (SELECT 1 FROM public.sql_roles r WHERE r.role_name = current_user)
    OR {col} IN (SELECT r.tenant_id FROM public.sql_roles r WHERE r.role_name = current_user)
)"""

VIEWS: dict[str, str] = {
    # One row per segment of a finished job: the drill-down behind every aggregate.
    "segments": f"""
        SELECT s.tenant_id, s.job_id, j.filename, s.idx, s.start_s, s.end_s,
               s.end_s - s.start_s AS duration_s, s.speaker, s.text, s.language, s.confidence,
               s.emotion, s.emotion_source, s.events, j.created_at AS job_created_at
        FROM public.segments s JOIN public.jobs j ON j.id = s.job_id
        WHERE j.status = 'done' AND {VISIBLE.format(col="s.tenant_id")}
    """,
    # Seconds and share of each emotion in each speaker's speech, per job.
    "speaker_emotions": f"""
        SELECT s.tenant_id, s.job_id, s.speaker, s.emotion, s.emotion_source,
               count(*) AS segments,
               sum(s.end_s - s.start_s) AS seconds,
               sum(s.end_s - s.start_s) / nullif(sum(sum(s.end_s - s.start_s))
                   OVER (PARTITION BY s.job_id, s.speaker), 0) AS share
        FROM public.segments s JOIN public.jobs j ON j.id = s.job_id
        WHERE j.status = 'done' AND s.emotion IS NOT NULL AND {VISIBLE.format(col="s.tenant_id")}
        GROUP BY s.tenant_id, s.job_id, s.speaker, s.emotion, s.emotion_source
    """,
    # Emotion seconds per tenant per day and per week (by the job's creation time, UTC).
    "emotions_by_period": f"""
        SELECT s.tenant_id, g.grain, date_trunc(g.grain, j.created_at AT TIME ZONE 'UTC')::date AS period_start,
               s.emotion, s.emotion_source, count(DISTINCT s.job_id) AS jobs, count(*) AS segments,
               sum(s.end_s - s.start_s) AS seconds
        FROM public.segments s JOIN public.jobs j ON j.id = s.job_id
        CROSS JOIN (VALUES ('day'), ('week')) AS g(grain)
        WHERE j.status = 'done' AND s.emotion IS NOT NULL AND {VISIBLE.format(col="s.tenant_id")}
        GROUP BY s.tenant_id, g.grain, period_start, s.emotion, s.emotion_source
    """,
    # Talk time per speaker per job, with its share of the job's speech.
    "speaker_talk_time": f"""
        SELECT sp.tenant_id, sp.job_id, sp.label AS speaker, sp.speech_s, sp.turns,
               sp.speech_s / nullif(sum(sp.speech_s) OVER (PARTITION BY sp.job_id), 0) AS share
        FROM public.speakers sp JOIN public.jobs j ON j.id = sp.job_id
        WHERE j.status = 'done' AND {VISIBLE.format(col="sp.tenant_id")}
    """,
    # One row per finished recording.
    "meetings": f"""
        SELECT j.tenant_id, j.id AS job_id, j.filename, j.created_at, j.finished_at, j.duration_s,
               (SELECT sum(s.end_s - s.start_s) FROM public.segments s WHERE s.job_id = j.id) AS speech_s,
               (SELECT count(*) FROM public.speakers sp WHERE sp.job_id = j.id) AS speakers,
               (SELECT jsonb_object_agg(sp.label, round((sp.speech_s / nullif(t.total, 0))::numeric, 4))
                  FROM public.speakers sp,
                       LATERAL (SELECT sum(x.speech_s) AS total FROM public.speakers x WHERE x.job_id = j.id) t
                  WHERE sp.job_id = j.id) AS talk_share,
               (SELECT s.emotion FROM public.segments s WHERE s.job_id = j.id AND s.emotion IS NOT NULL
                  GROUP BY s.emotion ORDER BY sum(s.end_s - s.start_s) DESC, s.emotion LIMIT 1) AS dominant_emotion,
               (SELECT string_agg(DISTINCT s.emotion_source, ',') FROM public.segments s
                  WHERE s.job_id = j.id) AS emotion_source,
               (SELECT coalesce(jsonb_agg(DISTINCT e.value), '[]'::jsonb)
                  FROM public.segments s, jsonb_array_elements_text(coalesce(s.events, '[]'::jsonb)) e
                  WHERE s.job_id = j.id) AS events
        FROM public.jobs j
        WHERE j.status = 'done' AND {VISIBLE.format(col="j.tenant_id")}
    """,
}


def upgrade() -> None:
    op.create_table(
        "sql_roles",
        sa.Column("role_name", sa.String(63), primary_key=True),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.add_column("tenants", sa.Column("webhook_secret", sa.String(128)))
    op.add_column("jobs", sa.Column("callback_url", sa.String(2000)))
    op.create_index(
        "jobs_tenant_idempotency",
        "jobs",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TZ),
        sa.UniqueConstraint("job_id", "event", name="webhook_deliveries_job_event"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id",
            sa.BigInteger,
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.execute("CREATE SCHEMA analytics")
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW analytics.{name} WITH (security_barrier) AS {body}")


def downgrade() -> None:
    op.execute("DROP SCHEMA analytics CASCADE")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_index("jobs_tenant_idempotency", table_name="jobs")
    op.drop_column("jobs", "callback_url")
    op.drop_column("tenants", "webhook_secret")
    op.drop_table("sql_roles")
