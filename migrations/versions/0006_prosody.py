"""Prosody, valence and arousal per segment; analysts see them, and each speaker's baseline.

segments gains the prosody engine's raw measures (JSONB), VADER's valence, and reduce's arousal
(z-score against the speaker's baseline) and heated flag. analytics.segments shows them as
columns (appended, so CREATE OR REPLACE keeps the view and its grants); the new
analytics.speaker_baselines has one row per speaker of a job: the speaker's median measures and
their heated moments. Row visibility is the same rule as every analytics view (0003).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VISIBLE = """(
    NOT EXISTS (SELECT 1 FROM public.sql_roles r WHERE r.role_name = current_user)
    OR {col} IN (SELECT r.tenant_id FROM public.sql_roles r WHERE r.role_name = current_user)
)"""

SEGMENTS_0003 = f"""
    SELECT s.tenant_id, s.job_id, j.filename, s.idx, s.start_s, s.end_s,
           s.end_s - s.start_s AS duration_s, s.speaker, s.text, s.language, s.confidence,
           s.emotion, s.emotion_source, s.events, j.created_at AS job_created_at
    FROM public.segments s JOIN public.jobs j ON j.id = s.job_id
    WHERE j.status = 'done' AND {VISIBLE.format(col="s.tenant_id")}
"""


def _measure(key: str) -> str:
    return f"(s.prosody ->> '{key}')::double precision AS {key}"


# Valence label thresholds are VADER's own (compound ≥ 0.05 positive, ≤ −0.05 negative).
SEGMENTS = f"""
    SELECT s.tenant_id, s.job_id, j.filename, s.idx, s.start_s, s.end_s,
           s.end_s - s.start_s AS duration_s, s.speaker, s.text, s.language, s.confidence,
           s.emotion, s.emotion_source, s.events, j.created_at AS job_created_at,
           s.valence,
           CASE WHEN s.valence >= 0.05 THEN 'positive' WHEN s.valence <= -0.05 THEN 'negative'
                WHEN s.valence IS NOT NULL THEN 'neutral' END AS valence_label,
           s.arousal, s.heated,
           {_measure("f0_median_hz")}, {_measure("f0_range_st")}, {_measure("loudness_db")},
           {_measure("speaking_rate")}, {_measure("pause_ratio")}, {_measure("jitter")},
           {_measure("shimmer")}, {_measure("hnr_db")}, s.prosody
    FROM public.segments s JOIN public.jobs j ON j.id = s.job_id
    WHERE j.status = 'done' AND {VISIBLE.format(col="s.tenant_id")}
"""


def _median(key: str) -> str:
    return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY (s.prosody ->> '{key}')::double precision) AS {key}"


# A speaker's baseline is the median of their segments' measures: the reference reduce's arousal
# z-scores are taken against (worker/affect.py).
SPEAKER_BASELINES = f"""
    SELECT s.tenant_id, s.job_id, j.filename, s.speaker,
           count(*) AS segments,
           count(s.arousal) AS measured_segments,
           {_median("f0_median_hz")}, {_median("f0_range_st")}, {_median("loudness_db")},
           {_median("speaking_rate")}, {_median("pause_ratio")}, {_median("jitter")},
           {_median("shimmer")}, {_median("hnr_db")},
           sum(s.valence * (s.end_s - s.start_s)) / nullif(sum(s.end_s - s.start_s)
               FILTER (WHERE s.valence IS NOT NULL), 0) AS mean_valence,
           max(s.arousal) AS max_arousal,
           count(*) FILTER (WHERE s.heated) AS heated_segments,
           coalesce(sum(s.end_s - s.start_s) FILTER (WHERE s.heated), 0) AS heated_seconds,
           coalesce(array_agg(s.start_s ORDER BY s.start_s) FILTER (WHERE s.heated), '{{}}') AS heated_at
    FROM public.segments s JOIN public.jobs j ON j.id = s.job_id
    WHERE j.status = 'done' AND s.prosody IS NOT NULL AND s.speaker IS NOT NULL
          AND {VISIBLE.format(col="s.tenant_id")}
    GROUP BY s.tenant_id, s.job_id, j.filename, s.speaker
"""


def upgrade() -> None:
    op.add_column("segments", sa.Column("prosody", pg.JSONB))
    op.add_column("segments", sa.Column("valence", pg.REAL))
    op.add_column("segments", sa.Column("arousal", pg.REAL))
    op.add_column("segments", sa.Column("heated", sa.Boolean))
    op.execute(f"CREATE OR REPLACE VIEW analytics.segments WITH (security_barrier) AS {SEGMENTS}")
    op.execute(f"CREATE VIEW analytics.speaker_baselines WITH (security_barrier) AS {SPEAKER_BASELINES}")
    _grant_to_analysts("analytics.speaker_baselines")


def _grant_to_analysts(view: str) -> None:
    """SELECT on a view for the analyst roles that exist already: default privileges cover only
    views their grantor makes, and a migration may run as another owner."""
    op.execute(
        f"""
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT role_name FROM public.sql_roles LOOP
                EXECUTE format('GRANT SELECT ON {view} TO %I', r.role_name);
            END LOOP;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW analytics.speaker_baselines")
    op.execute("DROP VIEW analytics.segments")
    op.execute(f"CREATE VIEW analytics.segments WITH (security_barrier) AS {SEGMENTS_0003}")
    _grant_to_analysts("analytics.segments")
    for column in ("heated", "arousal", "valence", "prosody"):
        op.drop_column("segments", column)
