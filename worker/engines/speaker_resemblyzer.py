"""Speaker embeddings with Resemblyzer's GE2E encoder (weights ship in the `resemblyzer` package).

Segments are cut into fixed windows (settings `speaker_window_s` / `speaker_hop_s`; GE2E was
trained on 1.6 s) so a change of speaker inside a VAD segment is visible to clustering and to the
resegmentation after it. All passes of a batch go through the encoder together, sorted and
grouped by length.

By default every window is a pass of its own from a fresh LSTM state, so at the 0.25 s hop each
second of speech goes through the LSTM four times. `speaker_pass_s` S > 0 reads the windows that
start within S seconds of each other off one pass restarted every S seconds (the LSTM's output
where each window ends): at S = 1.0, about half the CPU. A window then
stands for its last `speaker_window_s` of audio but has heard up to S seconds more before it;
BENCHMARKS.md has what that does to DER, and why it is not the default.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from hark.audio import SAMPLE_RATE
from hark.settings import Settings
from worker.engines.base import Engine, SegmentAudio, SegmentResult, Window, pick_device

FRAMES_PER_S = 100  # 10 ms mel frames
MIN_FRAMES = 40  # shorter segments carry too little voice to embed
TARGET_DBFS = -30.0
N_FFT, HOP = 400, 160  # 25 ms / 10 ms at 16 kHz
# Windows per forward pass: the LSTM's activations for 64 windows stay in the CPU's cache, while
# far fewer windows per pass pay more per-call overhead.
FORWARD_WINDOWS = 64


class ResemblyzerSpeaker(Engine):
    name: ClassVar[str] = "resemblyzer"
    kind: ClassVar[str] = "embed"
    produces: ClassVar[frozenset[str]] = frozenset({"embedding"})
    consumes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.encoder = None
        self._filters = np.zeros((40, N_FFT // 2 + 1), dtype=np.float32)
        self._window = np.ones(N_FFT, dtype=np.float32)
        self.window_frames, self.hop_frames, self.pass_frames = 150, 50, 0

    def configure(self, window_s: float, hop_s: float, pass_s: float = 0.0) -> None:
        """Window length, hop and shared-pass restart in seconds (the settings' `speaker_window_s`,
        `speaker_hop_s`, `speaker_pass_s`; a pass shorter than a hop is a pass per window)."""
        self.window_frames = max(MIN_FRAMES, int(round(window_s * FRAMES_PER_S)))
        self.hop_frames = max(1, int(round(hop_s * FRAMES_PER_S)))
        pass_frames = int(round(pass_s * FRAMES_PER_S))
        self.pass_frames = pass_frames if pass_frames > self.hop_frames else 0

    def load(self, settings: Settings) -> None:
        from librosa.filters import mel
        from resemblyzer import VoiceEncoder

        self.configure(settings.speaker_window_s, settings.speaker_hop_s, settings.speaker_pass_s)
        # float32 throughout: bfloat16 (where the CPU has it) is cheaper, but its small changes to
        # the vectors are enough to make speaker clustering measurably worse on real speech.
        encoder = VoiceEncoder(device=pick_device(), verbose=False)
        encoder.eval()
        self.encoder = encoder
        self._filters = mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=40).astype(np.float32)
        self._window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)

    def _mel(self, samples: np.ndarray) -> np.ndarray:
        """Power mel spectrogram as the encoder was trained on (25 ms window, 10 ms hop, 40 bands,
        not log), after normalising loudness to -30 dBFS; plain numpy, no JIT warm-up."""
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) or 1e-9
        y = samples * np.float32(10 ** ((TARGET_DBFS - 20 * np.log10(rms)) / 20))
        y = np.pad(y, (N_FFT // 2, N_FFT // 2))
        count = 1 + (len(y) - N_FFT) // HOP
        frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP][:count]
        power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        return (power @ self._filters.T).astype(np.float32)

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        assert self.encoder is not None, "load() first"
        results = [SegmentResult(segment_id=seg.segment_id) for seg in batch]
        # One LSTM pass per (segment, first frame), with the windows (first, end frame) read off it.
        passes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        mels: list[np.ndarray] = []
        for i, seg in enumerate(batch):
            mel = self._mel(seg.samples)
            mels.append(mel)
            for a, b in self.windows(mel.shape[0]):
                first = (a // self.pass_frames) * self.pass_frames if self.pass_frames else a
                passes.setdefault((i, first), []).append((a, b))
        by_length: dict[int, list[tuple[int, int]]] = {}
        for (i, first), spans in passes.items():
            by_length.setdefault(max(b for _, b in spans) - first, []).append((i, first))
        with torch.inference_mode():
            for length, keys in sorted(by_length.items()):
                for c in range(0, len(keys), FORWARD_WINDOWS):
                    chunk = keys[c : c + FORWARD_WINDOWS]
                    x = np.stack([mels[i][first : first + length] for i, first in chunk])
                    out, _ = self.encoder.lstm(torch.from_numpy(x).to(self.encoder.device))
                    # As VoiceEncoder.forward, on the last layer's output where each window ends,
                    # all rows through the linear layer at once (the same sums as the whole batch).
                    picks = [(row, a, b) for row, key in enumerate(chunk) for a, b in passes[key]]
                    rows = torch.tensor([row for row, _, _ in picks])
                    steps = torch.tensor([b - chunk[row][1] - 1 for row, _, b in picks])
                    raw = self.encoder.relu(self.encoder.linear(out[rows, steps]))
                    vectors = (raw / torch.norm(raw, dim=1, keepdim=True)).cpu().numpy()
                    for (row, a, b), vector in zip(picks, vectors):
                        i = chunk[row][0]
                        seg = batch[i]
                        results[i].windows.append(
                            Window(
                                start_s=round(seg.start_s + a / FRAMES_PER_S, 3),
                                end_s=round(min(seg.start_s + b / FRAMES_PER_S, seg.end_s), 3),
                                vector=vector,
                            )
                        )
        for result in results:
            result.windows.sort(key=lambda w: w.start_s)
        return results

    def windows(self, frames: int) -> list[tuple[int, int]]:
        """(first, end) frames of a segment's windows: one every hop, a last one ending with the
        segment, none in a segment too short to embed."""
        size, hop = self.window_frames, self.hop_frames
        if frames < MIN_FRAMES:
            return []
        if frames <= size:
            return [(0, frames)]
        starts = list(range(0, frames - size + 1, hop))
        if starts[-1] + size < frames:  # cover the tail too
            starts.append(frames - size)
        return [(a, a + size) for a in starts]
