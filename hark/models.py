"""Database tables. The schema itself changes only through Alembic migrations in `migrations/`.

Every row below `tenants` carries `tenant_id` so that each query can filter on it directly.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hark.status import JOB_STATUSES, JobStatus


class Base(DeclarativeBase):
    pass


def _status_check() -> CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in JOB_STATUSES)
    return CheckConstraint(f"status IN ({allowed})", name="jobs_status_valid")


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # HMAC key for signing this tenant's webhooks; made on first use (see hark/webhooks.py).
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    # After a rotation the previous secret still signs deliveries for a grace period.
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(128))
    webhook_secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # sha256 of the secret; the secret itself is shown once at creation and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Batch(Base):
    """A group of jobs submitted together (an archive); its status is aggregated from its jobs."""

    __tablename__ = "batches"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    priority: Mapped[int] = mapped_column(Integer, default=9)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (_status_check(), Index("jobs_tenant_sha256", "tenant_id", "sha256"))
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.UPLOADING.value, index=True)
    filename: Mapped[str] = mapped_column(String(500), default="")
    source_key: Mapped[str] = mapped_column(String(1000), default="")
    sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_s: Mapped[float | None] = mapped_column(Float)
    options: Mapped[dict] = mapped_column(JSONB, default=dict)
    segments_total: Mapped[int | None] = mapped_column(Integer)
    tasks_total: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict] = mapped_column(JSONB, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # Where job.done / job.failed are POSTed (signed); None means no webhook.
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"), index=True)
    # Progress inside a stage: when the current status began, what the container header promises,
    # and how many seconds of audio prepare has decoded so far (updated as it streams).
    stage_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    declared_duration_s: Mapped[float | None] = mapped_column(Float)
    decoded_s: Mapped[float | None] = mapped_column(Float)
    # Audio that could not be decoded and is kept as silence: seconds, and [[start, end], ...].
    damaged_s: Mapped[float | None] = mapped_column(Float)
    damaged_ranges: Mapped[list | None] = mapped_column(JSONB)


class Upload(Base):
    """A presigned S3 multipart upload straight from the client; its job waits in `uploading`."""

    __tablename__ = "uploads"
    __table_args__ = (CheckConstraint("status IN ('open', 'completed', 'aborted')", name="uploads_status_valid"),)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    key: Mapped[str] = mapped_column(String(1000))
    s3_upload_id: Mapped[str] = mapped_column(String(1000))
    part_bytes: Mapped[int] = mapped_column(BigInteger)
    parts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (
        UniqueConstraint("job_id", "idx", name="segments_job_idx"),
        CheckConstraint("start_s >= 0 AND end_s > start_s", name="segments_time_order"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    speaker: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    # Word timings from ASR: [{"start", "end", "word", "p"}], used to split turns at speaker changes.
    words: Mapped[list | None] = mapped_column(JSONB)
    emotion: Mapped[str | None] = mapped_column(String(16))
    emotion_scores: Mapped[dict | None] = mapped_column(JSONB)
    # Where the emotion came from ("prosody+text" is not acoustic SER; analysts filter on this).
    emotion_source: Mapped[str | None] = mapped_column(String(32))
    # From the prosody engine: raw measures (worker/prosody.py, plus loudness_db relative to the
    # recording, added by reduce) and VADER's compound valence in [-1, 1]; from reduce: arousal,
    # a z-score against the speaker's own baseline in the job, and whether it is far above it.
    prosody: Mapped[dict | None] = mapped_column(JSONB)
    valence: Mapped[float | None] = mapped_column(REAL)
    arousal: Mapped[float | None] = mapped_column(REAL)
    heated: Mapped[bool | None] = mapped_column(Boolean)
    events: Mapped[list | None] = mapped_column(JSONB)
    # Kind → reason, for a segment an engine could not process (a poison segment fails alone).
    errors: Mapped[dict | None] = mapped_column(JSONB)


class Embedding(Base):
    """One speaker vector per analysis window; windows are finer than segments so turns inside
    a segment can be found."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("segment_id", "win_idx", name="embeddings_segment_win"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    win_idx: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    vector: Mapped[list[float]] = mapped_column(ARRAY(REAL))


class Speaker(Base):
    __tablename__ = "speakers"
    __table_args__ = (UniqueConstraint("job_id", "label", name="speakers_job_label"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    label: Mapped[str] = mapped_column(String(32))
    speech_s: Mapped[float] = mapped_column(Float)
    turns: Mapped[int] = mapped_column(Integer)
    centroid: Mapped[list[float] | None] = mapped_column(ARRAY(REAL))
    # The enrolled person this speaker was matched to (worker/voices.py), the cosine score of the
    # match, and "match" (reduce) or "manual" (a correction through the API, which sticks).
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("voices.id", ondelete="SET NULL"), index=True)
    person_score: Mapped[float | None] = mapped_column(REAL)
    person_source: Mapped[str | None] = mapped_column(String(16))


class SpeakerTurn(Base):
    """Who speaks when, as reduce found it; `overlap` marks a second voice heard over a speaker
    change. The conversation analytics (interruptions, overlap, monologues, response gaps) are
    computed from these in SQL."""

    __tablename__ = "speaker_turns"
    __table_args__ = (Index("speaker_turns_job_start", "job_id", "start_s"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    speaker: Mapped[str] = mapped_column(String(32))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    overlap: Mapped[bool] = mapped_column(Boolean, default=False)


class Voice(Base):
    """A tenant's named person; what makes the voice is its samples."""

    __tablename__ = "voices"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="voices_tenant_name"),)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class VoiceSample(Base):
    """One vector of a voice: a job speaker's centroid ("speaker"), reference audio run through
    the speaker engine ("audio"), or a speaker a user assigned by hand ("correction"). The job and
    speaker it came from are kept, so a correction is found again if the job is reduced again."""

    __tablename__ = "voice_samples"
    __table_args__ = (
        CheckConstraint("source IN ('speaker', 'audio', 'correction')", name="voice_samples_source_valid"),
        Index("voice_samples_job_speaker", "job_id", "speaker"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    voice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    source: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    speaker: Mapped[str | None] = mapped_column(String(32))
    vector: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class JobTask(Base):
    """One unit of fanned-out model work (a batch of segments for one kind of result).

    Completion is recorded per row, so a redelivered task cannot be counted twice, and the job's
    progress is simply done rows over all rows."""

    __tablename__ = "job_tasks"
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    batch_idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_idx: Mapped[int] = mapped_column(Integer)
    last_idx: Mapped[int] = mapped_column(Integer)
    speech_s: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the task message was (last) sent and when a worker last began it: the janitor's evidence
    # that a message was lost or that the worker running it died.
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TaskLease(Base):
    """A task a worker process is running, renewed every few seconds by that process
    (worker/leases.py); one that runs out means its worker died, and the janitor sends the task
    again. `holder` is the Celery task id allowed to run it: a retry keeps the id, a re-send by
    the janitor gets a new one, so a stale copy of the old message finds it held and does nothing."""

    __tablename__ = "task_leases"
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    # "prepare", "diarize", "reduce" or "infer:<batch>:<kind>"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    process: Mapped[str] = mapped_column(String(200), default="")
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlRole(Base):
    """A database login for analysts, limited to one tenant's rows in the `analytics` views."""

    __tablename__ = "sql_roles"
    role_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(Base):
    """One event to deliver for a job; the unique (job, event) makes enqueueing it idempotent."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("job_id", "event", name="webhook_deliveries_job_event"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2000))
    # pending → delivered | failed (retries exhausted)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    """One HTTP try of a delivery: what the receiver answered, or why it could not be reached."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
