"""Text-lexicon emotion: the labelled fallback for deployments without an acoustic emotion model.

No speech-emotion model ships in a PyPI package, so the embedded default reads the transcript and
counts emotion words from Hark's own list (`data/emotion_lexicon.tsv`), skipping words right after
a negation. Every result carries `emotion_source = "text-lexicon"` so analysts never mistake it for
acoustic speech-emotion recognition. It consumes text, so it runs after ASR on the same batch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from hark.settings import Settings
from worker.engines.base import Engine, SegmentAudio, SegmentResult

EMOTIONS = ("happy", "sad", "angry", "neutral", "fearful", "disgusted", "surprised")
NEGATIONS = frozenset(
    {"not", "no", "never", "don't", "didn't", "isn't", "wasn't", "aren't", "can't", "won't", "nothing"}
)
LEXICON_PATH = Path(__file__).parent / "data" / "emotion_lexicon.tsv"
# Neutral's weight stands for all the words that carry no emotion: one emotion word in a short
# sentence tips it, a single one lost in a long monologue does not.
NEUTRAL_BASE = 0.5
NEUTRAL_PER_WORD = 0.08


class LexiconEmotion(Engine):
    name: ClassVar[str] = "text-lexicon"
    kind: ClassVar[str] = "emotion"
    produces: ClassVar[frozenset[str]] = frozenset({"emotion"})
    consumes: ClassVar[frozenset[str]] = frozenset({"text"})
    reads_audio: ClassVar[bool] = False

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}
        self.prefixes: list[tuple[str, str]] = []

    def load(self, settings: Settings) -> None:
        for line in LEXICON_PATH.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            word, emotion = line.split("\t")
            if emotion not in EMOTIONS:
                raise ValueError(f"unknown emotion {emotion!r} in {LEXICON_PATH}")
            if word.endswith("*"):
                self.prefixes.append((word[:-1], emotion))
            else:
                self.exact[word.rstrip("?")] = emotion

    def lookup(self, word: str) -> str | None:
        if word in self.exact:
            return self.exact[word]
        for prefix, emotion in self.prefixes:
            if word.startswith(prefix):
                return emotion
        return None

    def score(self, text: str) -> dict[str, float]:
        tokens = re.findall(r"[a-z']+", text.lower())
        counts = dict.fromkeys(EMOTIONS, 0.0)
        counts["neutral"] = NEUTRAL_BASE + NEUTRAL_PER_WORD * len(tokens)
        for i, token in enumerate(tokens):
            emotion = self.lookup(token)
            if emotion and not NEGATIONS.intersection(tokens[max(0, i - 2) : i]):
                counts[emotion] += 1.0
        total = sum(counts.values())
        return {k: round(v / total, 4) for k, v in counts.items()}

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        results = []
        for seg in batch:
            scores = self.score(seg.text or "")
            results.append(
                SegmentResult(
                    segment_id=seg.segment_id,
                    emotion=max(scores, key=lambda k: scores[k]),
                    emotion_scores=scores,
                    emotion_source=self.name,
                )
            )
        return results
