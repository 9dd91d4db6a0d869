"""analytics.meetings gains `languages`: the languages its segments were transcribed in (job
option `language`, issue 22), the one with the most speech first, as a JSON array.
analytics.segments already has `language` and `confidence`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from alembic import op

from migrations.visibility import VISIBLE

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# analytics.meetings as 0008 made it, with 0009's visibility rule; CREATE OR REPLACE VIEW may only
# add columns at its end, and keeps the analyst roles' grants.
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
                  WHERE s.job_id = j.id) AS events,
               coalesce(j.damaged_s, 0) AS damaged_s,
               coalesce(j.damaged_ranges, '[]'::jsonb) AS damaged_ranges{{languages}}
        FROM public.jobs j
        WHERE j.status = 'done' AND {VISIBLE.format(col="j.tenant_id")}
    """
LANGUAGES = """,
               (SELECT coalesce(jsonb_agg(l.language ORDER BY l.speech DESC, l.language), '[]'::jsonb)
                  FROM (SELECT s.language, sum(s.end_s - s.start_s) AS speech FROM public.segments s
                        WHERE s.job_id = j.id AND s.language IS NOT NULL GROUP BY s.language) l) AS languages"""


def upgrade() -> None:
    op.execute(
        f"CREATE OR REPLACE VIEW analytics.meetings WITH (security_barrier) AS {MEETINGS.format(languages=LANGUAGES)}"
    )


def downgrade() -> None:
    # A view's columns cannot be dropped by CREATE OR REPLACE: re-create it, and grant it again to
    # the analyst roles that had it.
    op.execute("DROP VIEW analytics.meetings")
    op.execute(f"CREATE VIEW analytics.meetings WITH (security_barrier) AS {MEETINGS.format(languages='')}")
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT role_name FROM public.sql_roles LOOP
                EXECUTE format('GRANT SELECT ON analytics.meetings TO %I', r.role_name);
            END LOOP;
        END $$
        """
    )
