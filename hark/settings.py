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
    # Largest accepted upload through the web process, in bytes.
    max_upload_bytes: int = 20 * 1024**3
    # Segmentation and batching.
    max_segment_s: float = 30.0
    batch_speech_s: float = 120.0
    # Engines, by registry name.
    vad_engine: str = "silero"
    asr_engine: str = "whisper-tiny-en"
    speaker_engine: str = "resemblyzer"
    emotion_engine: str = "text-lexicon"
    # Threads each model process may use; 0 lets the library decide.
    torch_threads: int = 0
    # Decoding limits enforced in the worker.
    max_duration_s: float = 12 * 3600.0
    # Diarization. Speaker vectors are taken over windows this long, this far apart, inside each
    # VAD segment: short hops give the resegmentation fine time resolution at speaker changes.
    speaker_window_s: float = 1.0
    speaker_hop_s: float = 0.25

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
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
