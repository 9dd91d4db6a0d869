"""Voice activity detection with silero-vad, run as a stream.

The model is stateful (it carries context between 32 ms frames), so the decoder's blocks can be
fed one after another and only the per-frame speech probabilities and energies are kept (8 bytes
per 32 ms, about 9 MB for ten hours). Segments are cut from the probabilities at the end with
hysteresis; segments longer than the maximum are split at their lowest-energy point (a breath or
a word boundary), and short neighbours are merged up to `merge_length_s`, as FunASR does, so ASR
gets fewer, fuller pieces of context.
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
    # Merge neighbours while first start to last end stays within this; 0 keeps every segment.
    merge_length_s: float = 0.0


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
        self._energy: list[np.ndarray] = []
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
        self._energy.append(frame_energy(frames.numpy()))
        self._carry = audio[usable:]

    def probabilities(self) -> np.ndarray:
        return np.concatenate(self._probs) if self._probs else np.zeros(0, dtype=np.float32)

    def energies(self) -> np.ndarray:
        return np.concatenate(self._energy) if self._energy else np.zeros(0, dtype=np.float32)

    def segments(self, options: VadOptions = VadOptions()) -> list[tuple[float, float]]:
        return segments_from_probabilities(self.probabilities(), self.samples / SAMPLE_RATE, options, self.energies())


def frame_energy(frames: np.ndarray) -> np.ndarray:
    """Log mean-square energy of each frame (rows of FRAME samples)."""
    return np.log10(np.mean(np.square(frames, dtype=np.float32), axis=1) + 1e-10).astype(np.float32)


def segments_from_probabilities(
    probs: np.ndarray, duration_s: float, options: VadOptions = VadOptions(), energy: np.ndarray | None = None
) -> list[tuple[float, float]]:
    """Hysteresis over frame probabilities, then padding, merging of overlaps, long-segment splits
    (at the lowest `energy` frame, or the least speech-like one when no energies are given) and
    merging of short neighbours."""
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
    cost = _smooth(energy) if energy is not None and energy.size == probs.size else probs
    out: list[tuple[float, float]] = []
    for s, e in padded:
        out.extend(_split_long(cost, s, e, options.max_segment_s))
    out = [(s, e) for s, e in out if e - s > 0.01]
    if options.merge_length_s > 0:
        out = merge_short(out, min(options.merge_length_s, options.max_segment_s))
    return [(round(s, 3), round(e, 3)) for s, e in out]


def merge_short(spans: list[tuple[float, float]], merge_length_s: float) -> list[tuple[float, float]]:
    """Join consecutive segments while the joined one (first start to last end, pauses included)
    is no longer than `merge_length_s`."""
    merged: list[tuple[float, float]] = []
    for s, e in spans:
        if merged and e - merged[-1][0] <= merge_length_s:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _smooth(values: np.ndarray, width: int = 5) -> np.ndarray:
    """Moving average over ~160 ms, so a cut lands in a sustained quiet stretch, not one odd frame."""
    if values.size < width:
        return values
    return np.convolve(values, np.ones(width, dtype=np.float32) / width, mode="same")


def _split_long(cost: np.ndarray, start: float, end: float, max_s: float) -> list[tuple[float, float]]:
    """Split [start, end) into pieces no longer than max_s, cutting at the frame of lowest `cost`
    (energy, or speech probability) in the second half of each window, so cuts land in pauses
    where there are any."""
    pieces: list[tuple[float, float]] = []
    while end - start > max_s:
        lo = int((start + max_s / 2) / FRAME_S)
        hi = max(lo + 1, int((start + max_s) / FRAME_S))
        window = cost[lo:hi]
        cut = (lo + int(np.argmin(window))) * FRAME_S if window.size else start + max_s
        cut = min(max(cut, start + 1.0), start + max_s)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces
