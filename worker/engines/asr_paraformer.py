"""Paraformer-large: non-autoregressive Chinese/English ASR, with CT-Transformer punctuation.

Paraformer answers unpunctuated text (characters for Chinese, words for English) and, for the
BiCif/SeACo variants published as paraformer-large, a timestamp per unit. The punctuation model
(`HARK_PARAFORMER_PUNC_DIR`, e.g. ct-punc) then restores punctuation and sentence capitals for each
segment; word timings are kept by attaching each inserted mark to the unit before it, so the
transcript assembly, which concatenates words, reads the punctuated text.

Models load from `HARK_PARAFORMER_DIR` / `HARK_PARAFORMER_PUNC_DIR` through funasr. Where the
directory holds a SeACo-Paraformer, a job's `hotwords` bias its decoding toward those terms; the
other variants have no such input, and the API refuses the option for them (worker/engines/__init__.py).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import torch

from hark.audio import SAMPLE_RATE
from hark.settings import Settings
from worker.engines.base import PASS_S, Engine, SegmentAudio, SegmentResult, pass_seconds, pick_device, run_by_length
from worker.engines.funasr_models import generate, has_hotword_input, hotword_file, load_model, model_dir

SETTING = "HARK_PARAFORMER_DIR"
PUNC_SETTING = "HARK_PARAFORMER_PUNC_DIR"
MIN_SAMPLES = SAMPLE_RATE // 10
# Paraformer's units: one CJK character, or a run of anything else up to a space.
CJK = "\u3400-\u9fff\uf900-\ufaff"
UNIT = re.compile(f"[{CJK}]|[^\\s{CJK}]+")
CJK_CHAR = re.compile(f"[{CJK}]")


def units(text: str) -> list[str]:
    return UNIT.findall(text)


def join_units(pieces: list[str]) -> str:
    """Running text from units: a space between two non-CJK units only (funasr's answer with
    timestamps puts one between every unit, Chinese characters included)."""
    out = ""
    for i, piece in enumerate(pieces):
        glued = i == 0 or CJK_CHAR.fullmatch(piece) or CJK_CHAR.fullmatch(pieces[i - 1])
        out += piece if glued else " " + piece
    return out


def attach_punctuation(raw_units: list[str], punctuated: str) -> list[str] | None:
    """Each unit as it appears in the punctuated text, with the marks and capitals the
    punctuation model gave it; None when the two texts do not line up unit by unit."""
    out: list[str] = []
    pos = 0
    for unit in raw_units:
        at = punctuated.lower().find(unit.lower(), pos)
        if at < 0:
            return None
        between = punctuated[pos:at]
        if between.strip() and not out:
            return None  # something before the first unit: not a mark we can attach
        if out:
            out[-1] += between.rstrip()
        out.append((" " if out and between[-1:].isspace() else "") + punctuated[at : at + len(unit)])
        pos = at + len(unit)
    if out:
        out[-1] += punctuated[pos:].rstrip()
    return out


class ParaformerAsr(Engine):
    name: ClassVar[str] = "paraformer-large"
    kind: ClassVar[str] = "asr"
    produces: ClassVar[frozenset[str]] = frozenset({"text", "words"})
    consumes: ClassVar[frozenset[str]] = frozenset()
    # Read by SeACo-Paraformer only (`reads_hotwords`); the API accepts them for that model alone.
    job_options: ClassVar[frozenset[str]] = frozenset({"hotwords"})

    def __init__(self) -> None:
        self.model: Any = None
        self.punc: Any = None
        self.reads_hotwords = False
        self.device = "cpu"
        self.batch_s = PASS_S["cpu"]

    @classmethod
    def check(cls, settings: Settings) -> None:
        model_dir(settings.paraformer_dir, SETTING)
        if settings.paraformer_punc_dir:
            model_dir(settings.paraformer_punc_dir, PUNC_SETTING)

    def load(self, settings: Settings) -> None:
        self.check(settings)
        self.device = pick_device()
        self.model = load_model(
            model_dir(settings.paraformer_dir, SETTING), self.device, settings.torch_threads, filterbank=True
        )
        # The API's own reading of config.yaml, so the worker uses exactly what the API accepted.
        self.reads_hotwords = has_hotword_input(settings.paraformer_dir)
        if settings.paraformer_punc_dir:
            root = model_dir(settings.paraformer_punc_dir, PUNC_SETTING)
            self.punc = load_model(root, self.device, settings.torch_threads)
        self.batch_s = pass_seconds(settings.funasr_batch_s, self.device)

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        return self.run_with_options(batch, {})

    def run_with_options(self, batch: list[SegmentAudio], options: dict[str, Any]) -> list[SegmentResult]:
        """`hotwords` (a list of terms) bias every pass of the batch, on a SeACo model only."""
        assert self.model is not None, "load() first"
        audible = [seg for seg in batch if len(seg.samples) >= MIN_SAMPLES]
        terms = options.get("hotwords") if self.reads_hotwords else None
        with hotword_file(terms) as hotword:
            found = run_by_length(
                audible,
                [len(s.samples) / SAMPLE_RATE for s in audible],
                self.batch_s,
                lambda segs: self._forward(segs, hotword),
            )
        by_id = {seg.segment_id: r for seg, r in zip(audible, found)}
        return [by_id.get(seg.segment_id) or SegmentResult(segment_id=seg.segment_id, text="") for seg in batch]

    def _forward(self, segs: list[SegmentAudio], hotword: str | None) -> list[SegmentResult]:
        clips = [seg.samples.astype(np.float32, copy=False) for seg in segs]
        with torch.inference_mode():
            answers = generate(self.model, clips, hotword=hotword)
        return [self._result(seg, answer) for seg, answer in zip(segs, answers)]

    def _result(self, seg: SegmentAudio, answer: dict[str, Any]) -> SegmentResult:
        pieces = units(str(answer.get("text", "")))
        raw = join_units(pieces)
        text = self._punctuate(raw) if raw else ""
        surfaces = attach_punctuation(pieces, text)
        stamps = answer.get("timestamp")
        words = None
        if surfaces and isinstance(stamps, list) and len(stamps) == len(surfaces):
            words = [
                {
                    "start": round(seg.start_s + a / 1000, 3),
                    "end": round(min(seg.end_s, seg.start_s + b / 1000), 3),
                    "word": w,
                }
                for w, (a, b) in zip(surfaces, stamps)
            ]
        return SegmentResult(segment_id=seg.segment_id, text=text, words=words)

    def _punctuate(self, raw: str) -> str:
        if self.punc is None:
            return raw
        with torch.inference_mode():
            answer = self.punc.generate(input=raw, disable_pbar=True)
        return str(answer[0].get("text", raw)).strip() if answer else raw
