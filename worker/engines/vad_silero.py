"""Voice activity detection with silero-vad, run as a stream.

The model is stateful (it carries context between 32 ms frames), so the decoder's blocks can be
fed one after another and only the per-frame speech probabilities are kept (4 bytes per 32 ms,
about 4.5 MB for ten hours). Segments are cut from the probabilities at the end with hysteresis,
and segments longer than the maximum are split at their least speech-like frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hark.audio import SAMPLE_RATE

FRAME = 512  # samples per silero frame at 16 kHz
FRAME_S = FRAME / SAMPLE_RATE


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_s: float = 0.25
    min_silence_s: float = 0.4
    pad_s: float = 0.1
    max_segment_s: float = 30.0


class SileroVad:
    name = "silero"
    kind = "vad"

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None

    def load(self) -> None:
        from silero_vad import load_silero_vad

        self.model = load_silero_vad(onnx=False)

    def stream(self) -> "VadStream":
        if self.model is None:
            self.load()
        assert self.model is not None
        self.model.reset_states()
        return VadStream(self.model)


class VadStream:
    """Feed int16 blocks in order; `segments()` gives (start_s, end_s) pairs at the end."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._carry = np.zeros(0, dtype=np.float32)
        self._probs: list[np.ndarray] = []
        self.samples = 0

    @torch.inference_mode()
    def feed(self, block: np.ndarray) -> None:
        audio = np.concatenate([self._carry, block.astype(np.float32) / 32768.0])
        self.samples += block.size
        usable = (audio.size // FRAME) * FRAME
        frames = torch.from_numpy(audio[:usable]).reshape(-1, FRAME)
        probs = np.empty(frames.shape[0], dtype=np.float32)
        for i in range(frames.shape[0]):
            probs[i] = float(self.model(frames[i : i + 1], SAMPLE_RATE))
        self._probs.append(probs)
        self._carry = audio[usable:]

    def probabilities(self) -> np.ndarray:
        return np.concatenate(self._probs) if self._probs else np.zeros(0, dtype=np.float32)

    def segments(self, options: VadOptions = VadOptions()) -> list[tuple[float, float]]:
        return segments_from_probabilities(self.probabilities(), self.samples / SAMPLE_RATE, options)


def segments_from_probabilities(
    probs: np.ndarray, duration_s: float, options: VadOptions = VadOptions()
) -> list[tuple[float, float]]:
    """Hysteresis over frame probabilities, then padding, merging of overlaps and long-segment splits."""
    raw: list[tuple[int, int]] = []
    start: int | None = None
    silence_from: int | None = None
    min_silence = max(1, int(round(options.min_silence_s / FRAME_S)))
    for i, p in enumerate(probs):
        if start is None:
            if p >= options.threshold:
                start, silence_from = i, None
            continue
        if p >= options.threshold:
            silence_from = None
        elif p < options.neg_threshold:
            if silence_from is None:
                silence_from = i
            elif i - silence_from >= min_silence:
                raw.append((start, silence_from))
                start, silence_from = None, None
    if start is not None:
        raw.append((start, silence_from if silence_from is not None else len(probs)))
    min_frames = options.min_speech_s / FRAME_S
    padded: list[list[float]] = []
    for a, b in raw:
        if b - a < min_frames:
            continue
        s, e = max(0.0, a * FRAME_S - options.pad_s), min(duration_s, b * FRAME_S + options.pad_s)
        if padded and s <= padded[-1][1]:
            padded[-1][1] = max(padded[-1][1], e)
        else:
            padded.append([s, e])
    out: list[tuple[float, float]] = []
    for s, e in padded:
        out.extend(_split_long(probs, s, e, options.max_segment_s))
    return [(round(s, 3), round(e, 3)) for s, e in out if e - s > 0.01]


def _split_long(probs: np.ndarray, start: float, end: float, max_s: float) -> list[tuple[float, float]]:
    """Split [start, end) into pieces no longer than max_s, cutting at the least speech-like frame
    in the second half of each window, so cuts land in pauses where there are any."""
    pieces: list[tuple[float, float]] = []
    while end - start > max_s:
        lo = int((start + max_s / 2) / FRAME_S)
        hi = max(lo + 1, int((start + max_s) / FRAME_S))
        window = probs[lo:hi]
        cut = (lo + int(np.argmin(window))) * FRAME_S if window.size else start + max_s
        cut = min(max(cut, start + 1.0), start + max_s)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces
