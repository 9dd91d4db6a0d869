"""Acoustic speech-emotion recognition with GigaAM-Emo (Russian, trained on Dusha) from a local
model directory.

The model classifies a whole utterance into its own four classes, angry / sad / neutral /
positive. The segment's `emotion` is the top class in Hark's vocabulary (positive → happy, the
others keep their names); `emotion_scores` keeps the model's own classes and probabilities
unchanged, and `emotion_source` is "acoustic:gigaam-emo", as for the other acoustic models, unlike "prosody+text".
Segments go through the encoder in padded batches; each row is mean-pooled over its own frames
only (the library pools over the padded length, which is right only for a batch of one).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from hark.settings import Settings
from worker.engines.base import Engine, SegmentAudio, SegmentResult
from worker.engines.gigaam_model import checkpoint_path, encode_batches, load_gigaam

# GigaAM-Emo class → Hark's emotion vocabulary (worker/engines/base.py EMOTIONS).
TO_HARK = {"angry": "angry", "sad": "sad", "neutral": "neutral", "positive": "happy"}


class GigaAmEmotion(Engine):
    name: ClassVar[str] = "gigaam-emo"
    kind: ClassVar[str] = "emotion"
    produces: ClassVar[frozenset[str]] = frozenset({"emotion", "emotion_scores"})
    consumes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.model: Any = None
        self.labels: list[str] = []

    @classmethod
    def check(cls, settings: Settings) -> None:
        """Refuse a missing model directory or checkpoint by path, without loading it."""
        checkpoint_path(settings.gigaam_emo_dir)

    def load(self, settings: Settings) -> None:
        model = load_gigaam(settings.gigaam_emo_dir, "emo")
        labels = [str(label) for label in model.id2name]
        unknown = sorted(set(labels) - set(TO_HARK))
        if unknown:
            raise ValueError(f"{settings.gigaam_emo_dir}: emotion classes {unknown} have no Hark emotion")
        self.model, self.labels = model, labels

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        assert self.model is not None, "load() first"
        results: list[SegmentResult | None] = [None] * len(batch)
        for enc in encode_batches(self.model, [seg.samples for seg in batch]):
            with torch.inference_mode():
                frames = torch.arange(enc.encoded.shape[-1], device=enc.encoded.device)
                keep = (frames[None, :] < enc.lengths[:, None].to(frames.device)).to(enc.encoded.dtype)
                pooled = (enc.encoded * keep[:, None, :]).sum(-1) / keep.sum(-1, keepdim=True).clamp(min=1)
                probs = torch.softmax(self.model.head(pooled).float(), dim=-1).cpu().tolist()
            for i, row in zip(enc.index, probs):
                scores = {label: round(float(p), 4) for label, p in zip(self.labels, row)}
                top = max(scores, key=lambda k: scores[k])
                results[i] = SegmentResult(
                    segment_id=batch[i].segment_id,
                    emotion=TO_HARK[top],
                    emotion_scores=scores,
                    emotion_source=f"acoustic:{self.name}",
                )
        return [r for r in results if r is not None]
