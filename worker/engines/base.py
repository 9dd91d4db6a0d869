"""What every engine looks like, and the data passed to and from it.

An engine is loaded once per worker process (`load`, onto `pick_device()`) and then run on
batches of segments. It declares what it produces (a subset of `OUTPUTS`), so a deployment can
route kinds of work to the engines that make them and skip tasks another engine already covers
(SenseVoice's emotion tags make a separate emotion task unnecessary). Engines that run padded
forward passes group a batch's segments by length with `run_by_length`, so short segments are not
padded to the longest one of the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from hark.settings import Settings

if TYPE_CHECKING:
    from worker.engines.vad_silero import VadStream

# Everything an engine may declare in `produces`.
OUTPUTS = frozenset(
    {
        "text",
        "language",
        "confidence",
        "words",
        "emotion",
        "emotion_scores",
        "events",
        "embedding",
        "prosody",
        "valence",
    }
)
# Hark's emotion vocabulary: every engine's `emotion` is one of these (or None).
EMOTIONS = ("happy", "sad", "angry", "neutral", "fearful", "disgusted", "surprised")


@dataclass
class SegmentAudio:
    """One VAD segment handed to an engine: float32 samples at 16 kHz, plus text and its language
    when known."""

    segment_id: int
    idx: int
    start_s: float
    end_s: float
    samples: np.ndarray
    text: str | None = None
    language: str | None = None


@dataclass
class Window:
    """A speaker vector for one analysis window, times absolute in the recording."""

    start_s: float
    end_s: float
    vector: np.ndarray


@dataclass
class SegmentResult:
    """What an engine found for one segment; fields it does not produce stay None."""

    segment_id: int
    text: str | None = None
    language: str | None = None
    confidence: float | None = None
    words: list[dict[str, Any]] | None = None
    emotion: str | None = None
    emotion_scores: dict[str, float] | None = None
    emotion_source: str | None = None
    events: list[str] | None = None
    windows: list[Window] = field(default_factory=list)
    # Raw prosodic measures (worker/prosody.py) and text valence in [-1, 1], from the prosody engine.
    prosody: dict[str, Any] | None = None
    valence: float | None = None


class Engine:
    """A model engine for one kind of work. Subclasses set `name`, `kind` and `produces`, and
    implement `load` and `run`; the rest has defaults that fit most engines."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "asr" | "embed" | "emotion"
    produces: ClassVar[frozenset[str]]
    # Inputs besides audio, e.g. {"text"} for an emotion model that reads the transcript.
    consumes: ClassVar[frozenset[str]] = frozenset()
    # False for an engine that reads only `consumes`: its segments then come with empty samples,
    # and the task reads no audio from S3.
    reads_audio: ClassVar[bool] = True
    # Job options the engine reads (e.g. {"language", "itn"}): `run_with_options` gets just those.
    job_options: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def check(cls, settings: Settings) -> object:
        """Verify the engine's local model files without loading them (a worker calls this at
        start, so it refuses to start rather than fail its first task). Default: nothing to check."""
        return None

    def load(self, settings: Settings) -> None:
        """Load the model (once per worker process, onto `pick_device()`)."""
        raise NotImplementedError

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        """One result per segment, in the batch's order."""
        raise NotImplementedError

    def run_with_options(self, batch: list[SegmentAudio], options: dict[str, Any]) -> list[SegmentResult]:
        """`run` for an engine that reads job options (`job_options`); the default ignores them."""
        return self.run(batch)


class VadEngine:
    """A voice activity detector: one stream per recording, fed blocks as prepare decodes them."""

    name: ClassVar[str]
    kind: ClassVar[str] = "vad"

    def stream(self) -> VadStream:
        raise NotImplementedError


def run_engine(engine: Engine, batch: list[SegmentAudio], options: dict[str, Any]) -> list[SegmentResult]:
    """Run an engine on a batch, handing it the job options it declared in `job_options`."""
    if not engine.job_options:
        return engine.run(batch)
    return engine.run_with_options(batch, {k: v for k, v in options.items() if k in engine.job_options})


def pick_device() -> str:
    """CUDA when present, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class ModelDirMissing(FileNotFoundError):
    """A production engine's model directory is absent or incomplete. Raised at load, before any
    library is asked for the model, so a worker never tries to fetch weights from a hub."""


def require_model_dir(path: str | Path, setting: str, needs: Sequence[str | tuple[str, ...]]) -> Path:
    """The model directory named by `setting`, checked to hold every file in `needs` (a tuple
    means any one of those names)."""
    if not str(path).strip():
        raise ModelDirMissing(f"{setting} is not set: point it at the engine's local model directory")
    root = Path(path)
    if not root.is_dir():
        raise ModelDirMissing(f"model directory {root} ({setting}) does not exist; see docs/engines.md")
    missing = [
        " or ".join(names)
        for names in ((n,) if isinstance(n, str) else n for n in needs)
        if not any((root / name).is_file() for name in names)
    ]
    if missing:
        raise ModelDirMissing(f"model directory {root} ({setting}) lacks {', '.join(missing)}")
    return root


T = TypeVar("T")
R = TypeVar("R")

# Padded seconds of audio per forward pass of the engines that pad (FunASR's, where the setting
# `funasr_batch_s` is 0, the default; GigaAM's). A GPU is kept busy by large passes. On a CPU a
# large pass allocates hundreds of megabytes of activations that the kernel must map and zero each
# time, which costs more than the larger matrix products save (BENCHMARKS.md, "Padded seconds per
# forward pass on a CPU").
PASS_S = {"cuda": 240.0, "cpu": 30.0}


def pass_seconds(setting: float, device: str) -> float:
    """Padded seconds per forward pass: `setting` when it is set (> 0), else the device's default."""
    return setting if setting > 0 else PASS_S.get(device, PASS_S["cpu"])


def length_batches(lengths: Sequence[float], max_padded_s: float) -> list[list[int]]:
    """Indices grouped for padded forward passes: longest first, and each group's padded size
    (members x its longest member) at most `max_padded_s`; one item longer than that goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_padded_s:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def run_by_length(
    items: Sequence[T], lengths: Sequence[float], max_padded_s: float, forward: Callable[[list[T]], list[R]]
) -> list[R]:
    """`forward` over length-sorted groups (see `length_batches`), results back in the items'
    original order; `forward` returns one result per item it was given, in its order."""
    out: list[Any] = [None] * len(items)
    for group in length_batches(lengths, max_padded_s):
        results = forward([items[i] for i in group])
        if len(results) != len(group):
            raise RuntimeError(f"engine returned {len(results)} results for {len(group)} inputs")
        for i, result in zip(group, results):
            out[i] = result
    return out
