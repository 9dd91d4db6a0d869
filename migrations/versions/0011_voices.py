"""Voices: a tenant's named people, their samples, and the person each job speaker was matched to.

`voices` is a tenant's enrolled people; `voice_samples` their vectors (a job speaker's centroid,
reference audio run through the speaker engine, or a manual correction), deleted with the voice.
`speakers` gains the matched person, its score and whether it was matched or set by hand.
analytics.segments and analytics.speaker_talk_time gain `person` (CREATE OR REPLACE appends the
column and keeps the analyst roles' grants); analytics.voices lists the people. Row visibility is
0003's VISIBLE helper, repeated here so a later change to it re-bases by editing one string.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# Rows a connection may see (0003): its tenant when it is a registered analyst role.
VISIBLE = """(
    NOT EXISTS (SELECT 1 FROM public.sql_roles r WHERE r.role_name = current_user)
    OR {col} IN (SELECT r.tenant_id FROM public.sql_roles r WHERE r.role_name = current_user)
)"""


def _measure(key: str) -> str:
    return f"(s.prosody ->> '{key}')::double precision AS {key}"


# analytics.segments as 0006 made it, plus `person` at the end.
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
           {_measure("shimmer")}, {_measure("hnr_db")}, s.prosody{{person}}
    FROM public.segments s JOIN public.jobs j ON j.id = s.job_id
    WHERE j.status = 'done' AND {VISIBLE.format(col="s.tenant_id")}
"""
SEGMENT_PERSON = """,
           (SELECT v.name FROM public.speakers sp JOIN public.voices v ON v.id = sp.person_id
             WHERE sp.job_id = s.job_id AND sp.label = s.speaker) AS person"""

# analytics.speaker_talk_time as 0003 made it, plus the person, the match score and how it was set.
TALK_TIME = f"""
    SELECT sp.tenant_id, sp.job_id, sp.label AS speaker, sp.speech_s, sp.turns,
           sp.speech_s / nullif(sum(sp.speech_s) OVER (PARTITION BY sp.job_id), 0) AS share{{person}}
    FROM public.speakers sp JOIN public.jobs j ON j.id = sp.job_id
    WHERE j.status = 'done' AND {VISIBLE.format(col="sp.tenant_id")}
"""
TALK_PERSON = """,
           (SELECT v.name FROM public.voices v WHERE v.id = sp.person_id) AS person,
           sp.person_id, sp.person_score, sp.person_source"""

VOICES = f"""
    SELECT v.tenant_id, v.id AS voice_id, v.name, v.created_at,
           (SELECT count(*) FROM public.voice_samples x WHERE x.voice_id = v.id) AS samples,
           (SELECT count(DISTINCT sp.job_id) FROM public.speakers sp JOIN public.jobs j ON j.id = sp.job_id
             WHERE sp.person_id = v.id AND j.status = 'done') AS meetings
    FROM public.voices v
    WHERE {VISIBLE.format(col="v.tenant_id")}
"""


def _grant_to_analysts(view: str) -> None:
    """SELECT on a new view for the analyst roles that exist already (as in 0006)."""
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


def upgrade() -> None:
    op.create_table(
        "voices",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "name", name="voices_tenant_name"),
    )
    op.create_table(
        "voice_samples",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("voice_id", pg.UUID(as_uuid=True), sa.ForeignKey("voices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        sa.Column("speaker", sa.String(32)),
        sa.Column("vector", pg.ARRAY(pg.REAL), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("source IN ('speaker', 'audio', 'correction')", name="voice_samples_source_valid"),
    )
    op.create_index("voice_samples_voice", "voice_samples", ["voice_id"])
    op.create_index("voice_samples_tenant", "voice_samples", ["tenant_id"])
    op.create_index("voice_samples_job_speaker", "voice_samples", ["job_id", "speaker"])
    op.add_column(
        "speakers", sa.Column("person_id", pg.UUID(as_uuid=True), sa.ForeignKey("voices.id", ondelete="SET NULL"))
    )
    op.add_column("speakers", sa.Column("person_score", pg.REAL))
    op.add_column("speakers", sa.Column("person_source", sa.String(16)))
    op.create_index("speakers_person", "speakers", ["person_id"])
    op.execute(
        f"CREATE OR REPLACE VIEW analytics.segments WITH (security_barrier) AS {SEGMENTS.format(person=SEGMENT_PERSON)}"
    )
    op.execute(
        "CREATE OR REPLACE VIEW analytics.speaker_talk_time WITH (security_barrier) AS "
        f"{TALK_TIME.format(person=TALK_PERSON)}"
    )
    op.execute(f"CREATE VIEW analytics.voices WITH (security_barrier) AS {VOICES}")
    _grant_to_analysts("analytics.voices")


def downgrade() -> None:
    op.execute("DROP VIEW analytics.voices")
    # A view's columns cannot be dropped by CREATE OR REPLACE: re-create both as they were.
    op.execute("DROP VIEW analytics.speaker_talk_time")
    op.execute(f"CREATE VIEW analytics.speaker_talk_time WITH (security_barrier) AS {TALK_TIME.format(person='')}")
    _grant_to_analysts("analytics.speaker_talk_time")
    op.execute("DROP VIEW analytics.segments")
    op.execute(f"CREATE VIEW analytics.segments WITH (security_barrier) AS {SEGMENTS.format(person='')}")
    _grant_to_analysts("analytics.segments")
    op.drop_index("speakers_person", table_name="speakers")
    for column in ("person_source", "person_score", "person_id"):
        op.drop_column("speakers", column)
    op.drop_table("voice_samples")
    op.drop_table("voices")
