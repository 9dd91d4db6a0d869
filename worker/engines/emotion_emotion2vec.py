"""Acoustic speech emotion with emotion2vec+ (iic/emotion2vec_plus_large or _base) through funasr.

emotion2vec+ scores nine classes per utterance, labelled in its tokens.txt as "生气/angry",
"开心/happy", ..., "其他/other", "<unk>". The seven emotions are stored under the lower-case names of
Hark's vocabulary (worker/engines/base.py EMOTIONS); when "other" or "unknown" wins, the segment's
emotion stays NULL (scores are kept), as SenseVoice's <|EMO_UNKNOWN|> does. Every result is
labelled `emotion_source = "acoustic:emotion2vec-plus"`.

The model loads from `HARK_EMOTION2VEC_DIR`. It scores each clip on its own (no padding), so a
batch is grouped by length only to bound memory per call.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from hark.audio import SAMPLE_RATE
from hark.settings import Settings
from worker.engines.base import PASS_S, Engine, SegmentAudio, SegmentResult, pass_seconds, pick_device, run_by_length
from worker.engines.funasr_models import generate, load_model, model_dir

SETTING = "HARK_EMOTION2VEC_DIR"
EMOTION_SOURCE = "acoustic:emotion2vec-plus"
EMOTIONS = ("angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
ALIASES = {"<unk>": "unknown", "unk": "unknown", "unuse": "unknown"}
MIN_SAMPLES = SAMPLE_RATE // 4  # its convolutional front end needs a few hundred ms


def label_name(label: str) -> str:
    """'生气/angry' → 'angry'; '<unk>' → 'unknown'."""
    name = label.split("/")[-1].strip().lower()
    return ALIASES.get(name, name)


class Emotion2vecEmotion(Engine):
    name: ClassVar[str] = "emotion2vec-plus"
    kind: ClassVar[str] = "emotion"
    produces: ClassVar[frozenset[str]] = frozenset({"emotion", "emotion_scores"})
    consumes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.model: Any = None
        self.device = "cpu"
        self.batch_s = PASS_S["cpu"]

    @classmethod
    def check(cls, settings: Settings) -> None:
        model_dir(settings.emotion2vec_dir, SETTING)

    def load(self, settings: Settings) -> None:
        root = model_dir(settings.emotion2vec_dir, SETTING)
        self.device = pick_device()
        self.model = load_model(root, self.device, settings.torch_threads)
        self.batch_s = pass_seconds(settings.funasr_batch_s, self.device)

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        assert self.model is not None, "load() first"
        audible = [seg for seg in batch if len(seg.samples) >= MIN_SAMPLES]
        found = run_by_length(audible, [len(s.samples) / SAMPLE_RATE for s in audible], self.batch_s, self._forward)
        by_id = {seg.segment_id: r for seg, r in zip(audible, found)}
        return [by_id.get(seg.segment_id) or SegmentResult(segment_id=seg.segment_id) for seg in batch]

    def _forward(self, segs: list[SegmentAudio]) -> list[SegmentResult]:
        with torch.inference_mode():
            answers = generate(
                self.model,
                [seg.samples.astype(np.float32, copy=False) for seg in segs],
                granularity="utterance",
                extract_embedding=False,
            )
        results = []
        for seg, answer in zip(segs, answers):
            scores: dict[str, float] = {}
            for label, score in zip(answer.get("labels", []), answer.get("scores", [])):
                name = label_name(label)
                scores[name] = round(scores.get(name, 0.0) + float(score), 4)
            top = max(scores, key=lambda k: scores[k]) if scores else None
            results.append(
                SegmentResult(
                    segment_id=seg.segment_id,
                    emotion=top if top in EMOTIONS else None,
                    emotion_scores=scores or None,
                    emotion_source=EMOTION_SOURCE if scores else None,
                )
            )
        return results
