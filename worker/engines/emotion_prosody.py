"""Prosody and text valence: the embedded default emotion engine, measuring the voice itself.

No speech-emotion model ships in a package, but the voice can be measured without one: per
segment, F0, loudness, articulation rate, pauses and voice quality (worker/prosody.py, Praat
through parselmouth), and the valence of its words from VADER (English; other languages get
none rather than a meaningless zero). Arousal needs the speaker's own baseline, known only after
clustering, so reduce turns these raw measures into arousal, the heated flag and the final label
(worker/affect.py). Until then the label is "neutral": without arousal no signal is clear.

It reads the transcript, so it runs after ASR on the same batch (`consumes = {"text"}`).
Every result says `emotion_source = "prosody+text"`, never to be mistaken for acoustic SER.
"""

from __future__ import annotations

from typing import ClassVar

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from hark.settings import Settings
from worker.affect import PROSODY_SOURCE
from worker.engines.base import Engine, SegmentAudio, SegmentResult
from worker.prosody import measure_batch


def valence_language(language: str | None) -> bool:
    """VADER's lexicon is English; an unknown language (an engine that does not say) is read as
    English, the embedded ASR's only one."""
    return language is None or language.lower().split("-")[0] == "en"


class ProsodyEmotion(Engine):
    name: ClassVar[str] = "prosody"
    kind: ClassVar[str] = "emotion"
    produces: ClassVar[frozenset[str]] = frozenset({"emotion", "prosody", "valence"})
    consumes: ClassVar[frozenset[str]] = frozenset({"text"})

    def __init__(self) -> None:
        self.vader: SentimentIntensityAnalyzer | None = None

    def load(self, settings: Settings) -> None:
        self.vader = SentimentIntensityAnalyzer()

    def valence(self, text: str | None, language: str | None) -> float | None:
        """VADER's compound score in [-1, 1]; None without English words to read."""
        if self.vader is None:
            raise RuntimeError("engine not loaded")
        if not text or not text.strip() or not valence_language(language):
            return None
        return round(float(self.vader.polarity_scores(text)["compound"]), 4)

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        measures = measure_batch([seg.samples for seg in batch])
        return [
            SegmentResult(
                segment_id=seg.segment_id,
                emotion="neutral",
                emotion_source=PROSODY_SOURCE,
                prosody=m,
                valence=self.valence(seg.text, seg.language),
            )
            for seg, m in zip(batch, measures, strict=True)
        ]
