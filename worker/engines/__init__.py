"""Engine registry: name → class, imported lazily so a worker loads only the engines it serves.

Each engine class says what it `produces` and `consumes` (worker.engines.base); `check(settings)`,
where an engine has it, verifies its local model files without loading them, so a worker refuses
to start rather than fail on its first task.
"""

from __future__ import annotations

import importlib
from typing import Any

from hark.settings import Settings

REGISTRY: dict[str, str] = {
    "whisper-tiny-en": "worker.engines.asr_whisper:WhisperAsr",
    "resemblyzer": "worker.engines.speaker_resemblyzer:ResemblyzerSpeaker",
    "prosody": "worker.engines.emotion_prosody:ProsodyEmotion",
    # GigaAM (Russian ASR, acoustic emotion) and Whisper large-v3, from local model directories.
    "gigaam-ctc": "worker.engines.asr_gigaam:GigaAmCtcAsr",
    "gigaam-rnnt": "worker.engines.asr_gigaam:GigaAmRnntAsr",
    "gigaam-emo": "worker.engines.emotion_gigaam:GigaAmEmotion",
    "whisper-large-v3": "worker.engines.asr_whisper_large:WhisperLargeV3Asr",
    # FunASR engines (pip install hark[funasr]; model directories in settings)
    "sensevoice-small": "worker.engines.asr_sensevoice:SenseVoiceAsr",
    "paraformer-large": "worker.engines.asr_paraformer:ParaformerAsr",
    "campplus": "worker.engines.speaker_campplus:CamPlusSpeaker",
    "emotion2vec-plus": "worker.engines.emotion_emotion2vec:Emotion2vecEmotion",
}

# Names of replaced engines → their successors. "text-lexicon" (a hand-written word list) was the
# emotion default before prosody + VADER valence; jobs and deployments that still name it get that.
ALIASES: dict[str, str] = {"text-lexicon": "prosody"}

_loaded: dict[str, Any] = {}


def engine_class(name: str) -> Any:
    name = ALIASES.get(name, name)
    try:
        module, attr = REGISTRY[name].split(":")
    except KeyError:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return getattr(importlib.import_module(module), attr)


def get_engine(name: str, settings: Settings) -> Any:
    """The process-wide loaded instance of an engine (loaded on first use, then kept warm)."""
    name = ALIASES.get(name, name)
    if name not in _loaded:
        engine = engine_class(name)()
        engine.load(settings)
        _loaded[name] = engine
    return _loaded[name]


def check_engines(settings: Settings, names: list[str]) -> None:
    """Verify the named engines exist and their model files are in place (without loading them):
    a worker calls this at start for the engines its queues serve by default."""
    for name in names:
        cls = engine_class(name)
        if hasattr(cls, "check"):
            cls.check(settings)
