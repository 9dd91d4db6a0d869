"""Engine registry: name → class, imported lazily so a worker loads only the engines it serves."""
from __future__ import annotations

import importlib
from typing import Any

from hark.settings import Settings

REGISTRY: dict[str, str] = {
    "whisper-tiny-en": "worker.engines.asr_whisper:WhisperAsr",
    "resemblyzer": "worker.engines.speaker_resemblyzer:ResemblyzerSpeaker",
    "text-lexicon": "worker.engines.emotion_lexicon:LexiconEmotion",
    # GigaAM (Russian ASR, acoustic emotion) and Whisper large-v3, from local model directories.
    "gigaam-ctc": "worker.engines.asr_gigaam:GigaAmCtcAsr",
    "gigaam-rnnt": "worker.engines.asr_gigaam:GigaAmRnntAsr",
    "gigaam-emo": "worker.engines.emotion_gigaam:GigaAmEmotion",
    "whisper-large-v3": "worker.engines.asr_whisper_large:WhisperLargeV3Asr",
}

_loaded: dict[str, Any] = {}


def engine_class(name: str) -> Any:
    try:
        module, attr = REGISTRY[name].split(":")
    except KeyError:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return getattr(importlib.import_module(module), attr)


def get_engine(name: str, settings: Settings) -> Any:
    """The process-wide loaded instance of an engine (loaded on first use, then kept warm)."""
    if name not in _loaded:
        engine = engine_class(name)()
        engine.load(settings)
        _loaded[name] = engine
    return _loaded[name]
