"""Voices: a tenant's named people, their samples, and the person each job speaker was matched to;
speaker turns and conversation analytics.

`voices` is a tenant's enrolled people; `voice_samples` their vectors (a job speaker's centroid,
reference audio run through the speaker engine, or a manual correction), deleted with the voice.
`speakers` gains the matched person, its score and whether it was matched or set by hand.
analytics.segments and analytics.speaker_talk_time gain `person` (CREATE OR REPLACE appends the
column and keeps the analyst roles' grants); analytics.voices lists the people. Row visibility is
migrations.visibility.VISIBLE, the rule from 0009 on.

`speaker_turns` keeps reduce's turns (who speaks when; a second voice over a speaker change is a
turn with `overlap` true), so the dynamics of a conversation can be asked in SQL:
analytics.conversation (per speaker and meeting: interruptions made and suffered, overlap seconds,
words per minute, longest monologue, questions, median response gap) and
analytics.person_conversation (the same per named person across meetings).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.visibility import VISIBLE

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


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


# Measured from the turns that are not marked `overlap`: those are the embedded diarizer's fixed
# 0.15 s overlap at every back-to-back speaker change (a heuristic that helps DER), not evidence
# of anyone talking over anyone; turns that really overlap (separate channels, an overlap-aware
# diarizer) count. Islands: consecutive turns of one speaker (pauses included) are one stretch of
# talk; a stretch's response gap is its start less the end of the previous speaker's stretch
# (negative when they overlap).
CONVERSATION = f"""
    WITH t AS (
        SELECT st.* FROM public.speaker_turns st JOIN public.jobs j ON j.id = st.job_id
        WHERE j.status = 'done' AND NOT st.overlap AND {VISIBLE.format(col="st.tenant_id")}
    ),
    seq AS (
        SELECT t.*, CASE WHEN lag(t.speaker) OVER w IS DISTINCT FROM t.speaker THEN 1 ELSE 0 END AS new_island
        FROM t
        WINDOW w AS (PARTITION BY t.job_id ORDER BY t.start_s, t.end_s)
    ),
    numbered AS (
        SELECT seq.*, sum(new_island) OVER (PARTITION BY job_id ORDER BY start_s, end_s) AS island FROM seq
    ),
    islands AS (
        SELECT tenant_id, job_id, speaker, island, min(start_s) AS start_s, max(end_s) AS end_s
        FROM numbered GROUP BY tenant_id, job_id, speaker, island
    ),
    gaps AS (
        SELECT i.*, i.start_s - lag(i.end_s) OVER (PARTITION BY i.job_id ORDER BY i.island) AS response_gap_s
        FROM islands i
    ),
    -- A turn of one speaker starting inside another's turn that then ends before it does.
    interruptions AS (
        SELECT a.job_id, a.speaker AS by_speaker, b.speaker AS of_speaker
        FROM t a JOIN t b ON a.job_id = b.job_id AND a.speaker <> b.speaker
             AND b.start_s < a.start_s AND a.start_s < b.end_s AND b.end_s <= a.end_s
    ),
    overlapped AS (
        SELECT a.job_id, a.speaker,
               sum(least(a.end_s, b.end_s) - greatest(a.start_s, b.start_s)) AS seconds
        FROM t a JOIN t b ON a.job_id = b.job_id AND a.speaker <> b.speaker
             AND a.start_s < b.end_s AND b.start_s < a.end_s
        GROUP BY a.job_id, a.speaker
    ),
    words AS (
        SELECT s.job_id, s.speaker,
               sum(s.end_s - s.start_s) AS seconds,
               sum(coalesce(jsonb_array_length(s.words),
                            array_length(regexp_split_to_array(nullif(btrim(s.text), ''), '[[:space:]]+'), 1),
                            0))::bigint AS words,
               sum(length(coalesce(s.text, '')) - length(replace(coalesce(s.text, ''), '?', '')))::bigint AS questions
        FROM public.segments s WHERE s.speaker IS NOT NULL GROUP BY s.job_id, s.speaker
    ),
    speakers AS (SELECT DISTINCT tenant_id, job_id, speaker FROM t)
    SELECT sp.tenant_id, sp.job_id, j.filename, j.created_at AS job_created_at, sp.speaker,
           (SELECT v.name FROM public.speakers x JOIN public.voices v ON v.id = x.person_id
             WHERE x.job_id = sp.job_id AND x.label = sp.speaker) AS person,
           (SELECT count(*) FROM interruptions i WHERE i.job_id = sp.job_id AND i.by_speaker = sp.speaker)
               AS interruptions_made,
           (SELECT count(*) FROM interruptions i WHERE i.job_id = sp.job_id AND i.of_speaker = sp.speaker)
               AS interruptions_suffered,
           coalesce((SELECT o.seconds FROM overlapped o WHERE o.job_id = sp.job_id AND o.speaker = sp.speaker), 0)
               AS overlap_s,
           (SELECT w.words FROM words w WHERE w.job_id = sp.job_id AND w.speaker = sp.speaker) AS words,
           (SELECT (w.words * 60.0 / nullif(w.seconds, 0))::double precision FROM words w
             WHERE w.job_id = sp.job_id AND w.speaker = sp.speaker) AS words_per_minute,
           (SELECT max(g.end_s - g.start_s) FROM gaps g WHERE g.job_id = sp.job_id AND g.speaker = sp.speaker)
               AS longest_monologue_s,
           coalesce((SELECT w.questions FROM words w WHERE w.job_id = sp.job_id AND w.speaker = sp.speaker), 0)
               AS questions,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY g.response_gap_s) FROM gaps g
             WHERE g.job_id = sp.job_id AND g.speaker = sp.speaker AND g.response_gap_s IS NOT NULL)
               AS median_response_gap_s
    FROM speakers sp JOIN public.jobs j ON j.id = sp.job_id
"""

# Per named person across meetings: sums, and speech-weighted or median figures.
PERSON_CONVERSATION = f"""
    SELECT c.tenant_id, c.person, count(DISTINCT c.job_id) AS meetings,
           sum(c.interruptions_made)::bigint AS interruptions_made,
           sum(c.interruptions_suffered)::bigint AS interruptions_suffered,
           sum(c.overlap_s) AS overlap_s,
           sum(c.words)::bigint AS words,
           (sum(c.words) * 60.0 / nullif(sum(c.words / nullif(c.words_per_minute, 0) * 60.0), 0))::double precision
               AS words_per_minute,
           max(c.longest_monologue_s) AS longest_monologue_s,
           sum(c.questions)::bigint AS questions,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY c.median_response_gap_s) AS median_response_gap_s
    FROM analytics.conversation c
    WHERE c.person IS NOT NULL AND {VISIBLE.format(col="c.tenant_id")}
    GROUP BY c.tenant_id, c.person
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
    # pgvector, where the server has it (the compose image does; Debian's PostgreSQL does not):
    # search by voice then runs in the database (hark/voice_search.py). A role that may not create
    # it leaves the search in-process.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
                CREATE EXTENSION IF NOT EXISTS vector;
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pgvector is available but this role may not create it';
        END $$
        """
    )
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
    op.create_table(
        "speaker_turns",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("job_id", pg.UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", pg.UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("speaker", sa.String(32), nullable=False),
        sa.Column("start_s", sa.Float, nullable=False),
        sa.Column("end_s", sa.Float, nullable=False),
        sa.Column("overlap", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("speaker_turns_job_start", "speaker_turns", ["job_id", "start_s"])
    op.execute(f"CREATE VIEW analytics.conversation WITH (security_barrier) AS {CONVERSATION}")
    op.execute(f"CREATE VIEW analytics.person_conversation WITH (security_barrier) AS {PERSON_CONVERSATION}")
    for view in ("voices", "conversation", "person_conversation"):
        _grant_to_analysts(f"analytics.{view}")


def downgrade() -> None:
    op.execute("DROP VIEW analytics.person_conversation")
    op.execute("DROP VIEW analytics.conversation")
    op.drop_table("speaker_turns")
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
