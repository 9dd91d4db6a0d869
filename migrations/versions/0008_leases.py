"""Leases for running tasks, and what a damaged recording lost.

`task_leases`: one row per task a worker process is running (prepare, diarize, reduce, or one
batch of model work), renewed every few seconds by that process; the janitor re-sends a task whose
lease ran out (its worker died) instead of waiting an hour. `jobs.damaged_s` and
`jobs.damaged_ranges`: the seconds of audio that could not be decoded and kept as silence, shown
in the job's status, its JSON export and `analytics.meetings`.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# Rows a connection may see (as in 0003): its tenant when it is a registered analyst role.
VISIBLE = """(
    NOT EXISTS (SELECT 1 FROM public.sql_roles r WHERE r.role_name = current_user)
    OR j.tenant_id IN (SELECT r.tenant_id FROM public.sql_roles r WHERE r.role_name = current_user)
)"""
# analytics.meetings as 0003 made it; CREATE OR REPLACE VIEW may only add columns at its end, and
# keeps the analyst roles' grants.
MEETINGS = f"""
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
                  WHERE s.job_id = j.id) AS events{{damage}}
        FROM public.jobs j
        WHERE j.status = 'done' AND {VISIBLE}
    """
DAMAGE = (
    ",\n               coalesce(j.damaged_s, 0) AS damaged_s, coalesce(j.damaged_ranges, '[]'::jsonb) AS damaged_ranges"
)


def upgrade() -> None:
    op.create_table(
        "task_leases",
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        # "prepare", "diarize", "reduce" or "infer:<batch>:<kind>"
        sa.Column("name", sa.String(64), primary_key=True),
        # The Celery task id allowed to run it: a retry keeps its id, a janitor re-send gets a new one.
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("process", sa.String(200), nullable=False, server_default=""),
        sa.Column("acquired_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.add_column("jobs", sa.Column("damaged_s", sa.Float))
    op.add_column("jobs", sa.Column("damaged_ranges", pg.JSONB))
    op.execute(f"CREATE OR REPLACE VIEW analytics.meetings WITH (security_barrier) AS {MEETINGS.format(damage=DAMAGE)}")


def downgrade() -> None:
    op.execute("DROP VIEW analytics.meetings")
    op.execute(f"CREATE VIEW analytics.meetings WITH (security_barrier) AS {MEETINGS.format(damage='')}")
    op.drop_column("jobs", "damaged_ranges")
    op.drop_column("jobs", "damaged_s")
    op.drop_table("task_leases")
