"""Speaker embeddings with CAM++ (iic/speech_campplus_sv_zh-cn_16k-common) through funasr.

Each VAD segment is cut into the same windows as the embedded Resemblyzer engine
(`speaker_window_s` / `speaker_hop_s`, the tail covered by a last window ending at the segment's
end), so the reduce step's clustering and resegmentation work unchanged on CAM++ vectors. CAM++
pools statistics over every frame it is given, padding included, so windows are only batched with
windows of exactly the same length: all full windows form one group, each shorter segment its own.

The model loads from `HARK_CAMPPLUS_DIR` (config.yaml, configuration.json, campplus_cn_common.bin).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from hark.audio import SAMPLE_RATE
from hark.settings import Settings
from worker.engines.base import PASS_S, Engine, SegmentAudio, SegmentResult, Window, pass_seconds, pick_device
from worker.engines.funasr_models import load_model, model_dir

SETTING = "HARK_CAMPPLUS_DIR"
WEIGHTS = "campplus_cn_common.bin"
FRAME = SAMPLE_RATE // 100  # 10 ms: window positions are counted in frames, as Resemblyzer's are
MIN_FRAMES = 40  # shorter segments carry too little voice to embed


def window_frames(n: int, size: int, hop: int) -> list[tuple[int, int]]:
    """(start, end) frames of the windows over a segment of `n` frames: one window when it fits,
    else every `hop` frames plus one ending at the segment's end."""
    if n < MIN_FRAMES:
        return []
    if n <= size:
        return [(0, n)]
    starts = list(range(0, n - size + 1, hop))
    if starts[-1] + size < n:
        starts.append(n - size)
    return [(a, a + size) for a in starts]


def frame_count(samples: int) -> int:
    """10 ms frames of a segment counted as Resemblyzer's centred analysis counts them."""
    return 1 + samples // FRAME


def window_samples(samples: np.ndarray, a: int, b: int) -> np.ndarray:
    """The audio of frames a..b; the last window (which may reach one frame past the end) is
    taken back from the segment's end, so every full window has the same length."""
    size = (b - a) * FRAME
    start = max(0, min(a * FRAME, len(samples) - size))
    return samples[start : start + size]


class CamPlusSpeaker(Engine):
    name: ClassVar[str] = "campplus"
    kind: ClassVar[str] = "embed"
    produces: ClassVar[frozenset[str]] = frozenset({"embedding"})
    consumes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.model: Any = None
        self.device = "cpu"
        self.window, self.hop = 150, 50
        self.batch_s = PASS_S["cpu"]

    @classmethod
    def check(cls, settings: Settings) -> None:
        model_dir(settings.campplus_dir, SETTING, weights=WEIGHTS)

    def configure(self, window_s: float, hop_s: float) -> None:
        self.window = max(MIN_FRAMES, int(round(window_s * 100)))
        self.hop = max(1, int(round(hop_s * 100)))

    def load(self, settings: Settings) -> None:
        root = model_dir(settings.campplus_dir, SETTING, weights=WEIGHTS)
        self.configure(settings.speaker_window_s, settings.speaker_hop_s)
        self.device = pick_device()
        self.model = load_model(root, self.device, settings.torch_threads)
        self.batch_s = pass_seconds(settings.funasr_batch_s, self.device)

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        assert self.model is not None, "load() first"
        results = [SegmentResult(segment_id=seg.segment_id) for seg in batch]
        pieces: list[tuple[int, int, int]] = []  # (segment, first frame, end frame)
        for i, seg in enumerate(batch):
            pieces += [(i, a, b) for a, b in window_frames(frame_count(len(seg.samples)), self.window, self.hop)]
        by_length: dict[int, list[int]] = {}
        for k, (_, a, b) in enumerate(pieces):
            by_length.setdefault(b - a, []).append(k)
        vectors: dict[int, np.ndarray] = {}
        for frames, ks in sorted(by_length.items(), reverse=True):
            per_pass = max(1, int(self.batch_s * 100 // frames))
            for c in range(0, len(ks), per_pass):
                chunk = ks[c : c + per_pass]
                clips = [window_samples(batch[pieces[k][0]].samples, pieces[k][1], pieces[k][2]) for k in chunk]
                for k, vector in zip(chunk, self._embed(clips)):
                    vectors[k] = vector
        for k, (i, a, b) in enumerate(pieces):
            seg = batch[i]
            results[i].windows.append(
                Window(
                    start_s=round(seg.start_s + a / 100, 3),
                    end_s=round(min(seg.start_s + b / 100, seg.end_s), 3),
                    vector=vectors[k],
                )
            )
        return results

    def _embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """One forward pass over equal-length clips: (clips, dim) float32. funasr's CAM++ answers
        one result for the whole batch, its `spk_embedding` a (clips, dim) tensor."""
        with torch.inference_mode():
            answer = self.model.generate(
                input=[c.astype(np.float32, copy=False) for c in clips], batch_size=len(clips), disable_pbar=True
            )
        vectors = torch.cat([a["spk_embedding"].reshape(-1, a["spk_embedding"].shape[-1]) for a in answer])
        if vectors.shape[0] != len(clips):
            raise RuntimeError(f"CAM++ gave {vectors.shape[0]} embeddings for {len(clips)} windows")
        return vectors.float().cpu().numpy()
