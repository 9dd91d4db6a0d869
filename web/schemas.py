"""The API's bodies, defined once: pydantic models that validate what a request sends (job
options) and that `/v1/openapi.json` publishes as its component schemas, so the document and the
checks cannot drift apart. Response models describe what the views return (the integration tests
validate real responses against the published schemas)."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from hark.status import JobStatus

# ---- requests ----------------------------------------------------------------------------------

KINDS = ("asr", "embed", "emotion")


def _blank(value: Any) -> bool:
    return value is None or value == ""


class JobOptions(BaseModel):
    """How a job is processed: form fields or an `options` JSON object on `POST /v1/jobs`, the
    `options` of a direct upload or a batch. Blank values mean "the deployment's default"."""

    model_config = ConfigDict(extra="forbid")

    num_speakers: int | None = Field(None, ge=1, le=100, description="the exact number of speakers, when known")
    min_speakers: int | None = Field(None, ge=1, le=100)
    max_speakers: int | None = Field(None, ge=1, le=100)
    language: str | None = Field(
        None,
        pattern=r"^([a-z]{2,3}|auto|multi)$",
        description='ISO 639 code the speech is in; "auto" (default) detects the recording\'s language from its '
        'first speech, "multi" detects it per clip (meetings that switch language)',
    )
    task: Literal["transcribe", "translate"] | None = Field(
        None, description='"translate" gives English text (multilingual Whisper engines)'
    )
    prompt: str | None = Field(
        None, max_length=1000, description="text that primes the Whisper decoder (style, spelling, context)"
    )
    hotwords: list[str] | None = Field(
        None, max_length=100, description="terms (names, jargon) primed in Whisper and SeACo-Paraformer"
    )
    engines: dict[Literal["asr", "embed", "emotion"], str] | None = Field(
        None, description='engine per kind of work, e.g. {"asr": "sensevoice-small"}; "none" switches a kind off'
    )
    itn: bool | None = Field(None, description="inverse text normalisation (SenseVoice); default from settings")
    merge_length_s: float | None = Field(
        None, ge=0, description="merge neighbouring VAD segments up to this length (at most HARK_MAX_SEGMENT_S)"
    )
    channels: Literal["mix", "separate"] | None = Field(
        None,
        description="separate: each channel of a multi-channel recording is one speaker (VAD and ASR per channel,"
        " no clustering); default mix: the channels are mixed down and the speakers found by clustering",
    )
    channel_names: list[str] | None = Field(
        None, max_length=16, description="with channels=separate: the speaker label of each channel, in order"
    )
    enroll: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="a reference recording: its main speaker becomes a sample of this person (POST /v1/voices?name=)",
    )

    @field_validator("num_speakers", "min_speakers", "max_speakers", mode="before")
    @classmethod
    def _integer(cls, value: Any, info: ValidationInfo) -> int | None:
        if _blank(value):
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{info.field_name} must be an integer") from None
        if not 1 <= number <= 100:
            raise ValueError(f"{info.field_name} must be between 1 and 100")
        return number

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"[a-z]{2,3}|auto|multi", str(value)):
            raise ValueError("language must be an ISO 639 code such as 'en', 'auto' or 'multi'")
        return str(value)

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: Any) -> str | None:
        if _blank(value):
            return None
        if value not in ("transcribe", "translate"):
            raise ValueError("task must be 'transcribe' or 'translate'")
        return str(value)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: Any) -> str | None:
        if _blank(value):
            return None
        if not isinstance(value, str) or len(value) > 1000:
            raise ValueError("prompt must be text of at most 1000 characters")
        return value

    @field_validator("hotwords", mode="before")
    @classmethod
    def _hotwords(cls, value: Any) -> list[str] | None:
        """A list of terms, or one comma-separated string (a form field)."""
        if _blank(value) or value == []:
            return None
        terms = value.split(",") if isinstance(value, str) else value
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            raise ValueError("hotwords must be a list of terms")
        terms = [t.strip() for t in terms if t.strip()]
        if len(terms) > 100 or any(len(t) > 100 for t in terms):
            raise ValueError("hotwords: at most 100 terms of at most 100 characters")
        return terms or None

    @field_validator("engines", mode="before")
    @classmethod
    def _engines(cls, value: Any) -> dict[str, str] | None:
        if not value:
            return None
        if not isinstance(value, dict) or not all(k in KINDS for k in value):
            raise ValueError("engines must map asr/embed/emotion to engine names")
        return {k: str(v) for k, v in value.items()}

    @field_validator("itn", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool | None:
        if _blank(value):
            return None
        flag = str(value).lower()
        if flag not in {"true", "false", "1", "0"}:
            raise ValueError("itn must be true or false")
        return flag in {"true", "1"}

    @field_validator("merge_length_s", mode="before")
    @classmethod
    def _merge(cls, value: Any, info: ValidationInfo) -> float | None:
        if _blank(value):
            return None
        try:
            merge = float(value)
        except (TypeError, ValueError):
            raise ValueError("merge_length_s must be a number of seconds") from None
        limit = float((info.context or {}).get("max_segment_s", float("inf")))
        if not 0 <= merge <= limit:
            raise ValueError(f"merge_length_s must be between 0 and {limit:g}")
        return merge

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> str | None:
        return None if _blank(value) else value

    @field_validator("channel_names", mode="before")
    @classmethod
    def _names(cls, value: Any) -> list[str] | None:
        if _blank(value):
            return None
        if isinstance(value, str):  # a form field: comma-separated
            value = [v.strip() for v in value.split(",")]
        if not isinstance(value, list) or not all(isinstance(v, str) and 1 <= len(v.strip()) <= 32 for v in value):
            raise ValueError("channel_names must be a list of names of 1 to 32 characters")
        names = [v.strip() for v in value]
        if len(set(names)) != len(names):
            raise ValueError("channel_names must be different from each other")
        return names

    @model_validator(mode="after")
    def _speaker_range(self) -> JobOptions:
        if self.channel_names is not None and self.channels != "separate":
            raise ValueError("channel_names needs channels=separate")
        if self.min_speakers is not None and self.max_speakers is not None and self.min_speakers > self.max_speakers:
            raise ValueError("min_speakers is larger than max_speakers")
        return self


def first_error(exc: ValidationError) -> str:
    """One line for the client: the validators' own sentence, or pydantic's with the field named."""
    unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
    if unknown:
        return f"unknown options: {', '.join(unknown)}"
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    field = ".".join(str(part) for part in error["loc"])
    return message if error["type"] == "value_error" or not field else f"{field}: {message}"


class StartUpload(BaseModel):
    """`POST /v1/uploads`: a direct upload of one recording to S3 through presigned part URLs."""

    filename: str
    size: int = Field(ge=1)
    sha256: str | None = None
    options: JobOptions | None = None
    priority: Literal["interactive", "overnight"] | None = None
    force: bool | None = None


class PartEtag(BaseModel):
    part_number: int
    etag: str


class CompleteUpload(BaseModel):
    """`POST /v1/uploads/<id>/complete`: every uploaded part's ETag, numbered from 1."""

    parts: list[PartEtag]


# ---- responses ---------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str


class Error(BaseModel):
    error: ErrorDetail


class Progress(BaseModel):
    fraction: float = Field(ge=0, le=1)


class JobError(BaseModel):
    code: str
    message: str | None = None


class Job(BaseModel):
    id: uuid.UUID
    status: JobStatus
    stage: str | None = None
    filename: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    duration_s: float | None = None
    # Audio a damaged recording lost (kept as silence): seconds, and [start, end] stretches.
    damaged_s: float = Field(default=0.0, ge=0)
    damaged_ranges: list[tuple[float, float]] = []
    options: dict[str, Any] | None = None
    callback_url: str | None = None
    progress: Progress
    timings: dict[str, Any] | None = None
    error: JobError | None = None
    created_at: str | None
    started_at: str | None = None
    finished_at: str | None = None
    links: dict[str, str] | None = None


class JobSummary(BaseModel):
    id: uuid.UUID
    status: str
    filename: str
    duration_s: float | None = None
    error: dict[str, Any] | None = None
    created_at: str
    finished_at: str | None = None
    url: str


class JobList(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None


class EmotionRow(BaseModel):
    job_id: str | None = None
    speaker: str | None = None
    grain: str | None = None
    period_start: str | None = None
    emotion: str
    emotion_source: str | None
    seconds: float
    segments: int
    share: float | None = None
    jobs: int | None = None


class EmotionStats(BaseModel):
    rows: list[EmotionRow]


class SpeakerRow(BaseModel):
    job_id: str
    speaker: str
    speech_s: float
    turns: int
    share: float | None


class SpeakerStats(BaseModel):
    rows: list[SpeakerRow]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class VoiceEnroll(BaseModel):
    """Enroll a person from a finished job's speaker (`POST /v1/voices`): a name already enrolled
    gains the sample (several samples of a person are combined)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="the person's name, unique in the tenant")
    job_id: uuid.UUID = Field(description="a finished job of this tenant")
    speaker: str = Field(min_length=1, max_length=32, description="the speaker's label in that job, e.g. SPEAKER_00")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value


class VoiceSampleFrom(BaseModel):
    """Add a sample to a voice from a finished job's speaker."""

    model_config = ConfigDict(extra="forbid")
    job_id: uuid.UUID
    speaker: str = Field(min_length=1, max_length=32)


class VoiceRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class SpeakerCorrection(BaseModel):
    """Who a job's speaker is, set by hand: a voice by id, or a name (enrolled if new); both absent
    (or null) makes the speaker anonymous. A named correction is kept as a sample of the voice."""

    model_config = ConfigDict(extra="forbid")
    voice_id: uuid.UUID | None = None
    name: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> SpeakerCorrection:
        if self.voice_id is not None and self.name is not None:
            raise ValueError("give voice_id or name, not both")
        return self


class Voice(BaseModel):
    id: uuid.UUID
    name: str
    samples: int
    dims: list[int] = Field(description="vector lengths of its samples (one per speaker engine used)")
    created_at: str


class VoiceList(BaseModel):
    voices: list[Voice]


class JobSpeaker(BaseModel):
    label: str
    speech_s: float
    turns: int
    person: str | None
    voice_id: uuid.UUID | None
    person_score: float | None
    person_source: Literal["match", "manual"] | None


class JobSpeakers(BaseModel):
    speakers: list[JobSpeaker]
    threshold: float | None = Field(description="the score a speaker must reach to be named automatically")


class VoiceHit(BaseModel):
    job_id: uuid.UUID
    filename: str
    created_at: str
    speaker: str
    score: float
    person: str | None
    above_threshold: bool


class VoiceHits(BaseModel):
    results: list[VoiceHit]
    threshold: float | None
    method: Literal["pgvector", "in-process"]


class ConversationRow(BaseModel):
    job_id: str | None = None
    speaker: str | None = None
    person: str | None
    meetings: int | None = None
    interruptions_made: int
    interruptions_suffered: int
    overlap_s: float
    words: int | None
    words_per_minute: float | None
    longest_monologue_s: float | None
    questions: int
    median_response_gap_s: float | None


class ConversationStats(BaseModel):
    rows: list[ConversationRow]


class DeliveryAttempt(BaseModel):
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    at: str


class Delivery(BaseModel):
    id: int
    event: str
    url: str
    state: Literal["pending", "delivered", "failed"]
    attempts: list[DeliveryAttempt]


class WebhookDeliveries(BaseModel):
    deliveries: list[Delivery]


class WebhookSecret(BaseModel):
    secret: str


class RotatedWebhookSecret(BaseModel):
    secret: str
    previous_valid_for_s: float = Field(description="how long deliveries are also signed with the replaced secret")


class PartUrl(BaseModel):
    part_number: int
    size: int = Field(description="the part's exact length in bytes; its URL is signed for it")
    url: str


class Upload(BaseModel):
    upload_id: uuid.UUID
    job_id: uuid.UUID
    part_size: int
    parts: list[PartUrl]
    expires_at: str
    complete_url: str | None = None


class UploadedPart(BaseModel):
    part_number: int
    etag: str
    size: int


class UploadStatus(BaseModel):
    upload_id: str
    job_id: str
    status: Literal["open", "completed", "aborted"]
    part_size: int
    parts_total: int
    uploaded: list[UploadedPart] | None = None
    parts: list[PartUrl] | None = None


class BatchJob(BaseModel):
    id: str
    status: str


class Batch(BaseModel):
    id: uuid.UUID
    name: str | None = None
    status: Literal["queued", "running", "done", "partial", "failed"]
    jobs_total: int
    counts: dict[str, int]
    progress: Progress
    jobs: list[BatchJob]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None
    job: str | None = None  # Hark: the job to follow when the route stopped waiting for it


class OpenAIError(BaseModel):
    """OpenAI's error shape, used by the /v1/audio routes."""

    error: OpenAIErrorDetail


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float
    probability: float | None = None
    speaker: str | None = None


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    speaker: str | None = None
    language: str | None = None


class TranscriptionVerbose(BaseModel):
    """`response_format=verbose_json`; `json` is only {"text": ...}, the others plain text."""

    task: str | None = None
    language: str | None = None
    duration: float | None = None
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, Any]


PUBLISHED: tuple[type[BaseModel], ...] = (
    Error,
    Job,
    JobList,
    EmotionStats,
    SpeakerStats,
    VoiceEnroll,
    VoiceSampleFrom,
    VoiceRename,
    SpeakerCorrection,
    Voice,
    VoiceList,
    JobSpeakers,
    VoiceHits,
    ConversationStats,
    WebhookDeliveries,
    WebhookSecret,
    RotatedWebhookSecret,
    Upload,
    UploadStatus,
    Batch,
    Health,
    OpenAIError,
    TranscriptionVerbose,
    JobOptions,
    StartUpload,
    CompleteUpload,
)


def component_schemas() -> dict[str, Any]:
    """Every published model and the models they refer to, as OpenAPI component schemas."""
    schemas: dict[str, Any] = {}
    for model in PUBLISHED:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}
