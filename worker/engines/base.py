"""What every engine looks like, and the data passed to and from it.

An engine is loaded once per worker process (`load`) and then run on batches of segments. It
declares what it produces, so a deployment can route kinds of work to the engines that make them
and skip tasks another engine already covers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from hark.settings import Settings


@dataclass
class SegmentAudio:
    """One VAD segment handed to an engine: float32 samples at 16 kHz, plus text when known."""

    segment_id: int
    idx: int
    start_s: float
    end_s: float
    samples: np.ndarray
    text: str | None = None


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


class Engine(Protocol):
    name: ClassVar[str]
    kind: ClassVar[str]  # "asr" | "embed" | "emotion"
    produces: ClassVar[frozenset[str]]
    # Inputs besides audio, e.g. {"text"} for an emotion model that reads the transcript.
    consumes: ClassVar[frozenset[str]]

    def load(self, settings: Settings) -> None: ...

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]: ...


def pick_device() -> str:
    """CUDA when present, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
