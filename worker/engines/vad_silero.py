"""Voice activity detection with silero-vad, run as a stream.

The model is stateful (it carries context between 32 ms frames), so the decoder's blocks can be
fed one after another and only the per-frame speech probabilities and energies are kept (8 bytes
per 32 ms, about 9 MB for ten hours). Each block goes through silero-vad's "sequence" ONNX export
in one call, the LSTM state and each frame's 64-sample context carried from block to block: the
same probabilities as calling the streaming model once per frame, at a quarter of the cost (those
18 750 calls per 10 minutes were mostly Python and torch overhead).

Segments are cut from the probabilities at the end with hysteresis; segments longer than the
maximum are split at their lowest-energy point (a breath or a word boundary), and short neighbours
are merged up to `merge_length_s`, as FunASR does, so ASR gets fewer, fuller pieces of context.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.audio import SAMPLE_RATE
from hark.settings import Settings
from worker.engines.base import VadEngine

FRAME = 512  # samples per silero frame at 16 kHz
CONTEXT = 64  # samples of the previous frame the model sees before each frame
MODEL_FILE = "silero_vad_16k_sequence.onnx"
FRAME_S = FRAME / SAMPLE_RATE


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.3
    neg_threshold: float = 0.2
    min_speech_s: float = 0.25
    min_silence_s: float = 0.4
    pad_s: float = 0.1
    max_segment_s: float = 30.0
    # Merge neighbours while first start to last end stays within this; 0 keeps every segment.
    merge_length_s: float = 0.0

    @classmethod
    def from_settings(cls, cfg: Settings, merge_length_s: float | None = None) -> VadOptions:
        """The deployment's segmentation (HARK_VAD_*, max_segment_s, merge_length_s)."""
        return cls(
            threshold=cfg.vad_threshold,
            neg_threshold=cfg.vad_neg_threshold,
            min_speech_s=cfg.vad_min_speech_s,
            min_silence_s=cfg.vad_min_silence_s,
            pad_s=cfg.vad_pad_s,
            max_segment_s=cfg.max_segment_s,
            merge_length_s=cfg.merge_length_s if merge_length_s is None else merge_length_s,
        )


class SileroVad(VadEngine):
    name = "silero"
    kind = "vad"

    def __init__(self) -> None:
        self.session: Any = None

    def load(self) -> None:
        import onnxruntime

        # Found without importing silero_vad, whose import sets torch's thread count process-wide.
        spec = importlib.util.find_spec("silero_vad")
        if spec is None or spec.origin is None:
            raise FileNotFoundError("the silero-vad package is not installed")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # small sequential model
        self.session = onnxruntime.InferenceSession(
            str(Path(spec.origin).parent / "data" / MODEL_FILE),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def stream(self) -> VadStream:
        if self.session is None:
            self.load()
        return VadStream(self.session)


class VadStream:
    """Feed int16 blocks in order; `segments()` gives (start_s, end_s) pairs at the end."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._carry = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)  # the last samples of the previous frame
        self._state = (np.zeros((1, 1, 128), dtype=np.float32), np.zeros((1, 1, 128), dtype=np.float32))
        self._probs: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []
        self.samples = 0

    def feed(self, block: np.ndarray) -> None:
        audio = np.concatenate([self._carry, block.astype(np.float32) / 32768.0])
        self.samples += block.size
        count = audio.size // FRAME
        self._carry = audio[count * FRAME :]
        if count == 0:
            return
        frames = audio[: count * FRAME].reshape(count, FRAME)
        contexts = np.empty((count, CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = frames[:-1, -CONTEXT:]
        self._context = frames[-1, -CONTEXT:].copy()
        inputs = {"input": np.concatenate([contexts, frames], axis=1), "h": self._state[0], "c": self._state[1]}
        probs, h, c = self.session.run(["speech_probs", "hn", "cn"], inputs)
        self._state = (h, c)
        self._probs.append(probs.reshape(-1).astype(np.float32, copy=False))
        self._energy.append(frame_energy(frames))

    def probabilities(self) -> np.ndarray:
        return np.concatenate(self._probs) if self._probs else np.zeros(0, dtype=np.float32)

    def energies(self) -> np.ndarray:
        return np.concatenate(self._energy) if self._energy else np.zeros(0, dtype=np.float32)

    def segments(self, options: VadOptions = VadOptions()) -> list[tuple[float, float]]:
        return segments_from_probabilities(self.probabilities(), self.samples / SAMPLE_RATE, options, self.energies())

    def final_segments(self, options: VadOptions = VadOptions()) -> list[tuple[float, float]]:
        """The segments no later audio can change: `segments()` of the whole recording will begin
        with exactly these, so their model work can start while decoding goes on."""
        return final_from_probabilities(self.probabilities(), options, self.energies())


def final_from_probabilities(
    probs: np.ndarray, options: VadOptions = VadOptions(), energy: np.ndarray | None = None
) -> list[tuple[float, float]]:
    """The first segments `segments_from_probabilities` will give for any continuation of `probs`:
    those before the last long silence (`stable_cut`), less a last merged group that could still
    take in the next segment."""
    cut = stable_cut(probs, options)
    if cut == 0:
        return []
    spans = segments_from_probabilities(probs[:cut], cut * FRAME_S, options, None if energy is None else energy[:cut])
    # Merging joins the next segment to the last group while the group stays short enough; it
    # can only do so while the group began less than the merge length before the cut.
    merge = min(options.merge_length_s, options.max_segment_s)
    if spans and merge > 0 and cut * FRAME_S - spans[-1][0] < merge + 0.01:
        spans.pop()
    return spans


def stable_cut(probs: np.ndarray, options: VadOptions) -> int:
    """The last frame boundary behind a run of silence long enough that no later frame can change
    what comes before it: every segment open there has closed (`min_silence_s`), and the padding
    of the segments on its two sides cannot meet. 0 when there is no such run yet."""
    run = max(1, int(round(options.min_silence_s / FRAME_S))) + 2 + int(np.ceil(2 * options.pad_s / FRAME_S))
    if probs.size < run:
        return 0
    below = np.concatenate([[0], np.cumsum(probs < options.neg_threshold)])
    silent = np.flatnonzero(below[run:] - below[:-run] == run)  # windows [i, i + run) all below
    return int(silent[-1]) + run if silent.size else 0


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
