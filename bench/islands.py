"""Long, mostly silent recordings with islands of generated speech, and their ground truth.

Hours of audio are produced block by block from a generator (nothing but one island is held in
memory) so tests and benchmarks can push 1-10 hour recordings through the pipeline without
keeping them on disk. Each island is one or two sentences from one espeak-ng voice; its start and
end (trimmed to where the voice is) are the reference segment boundaries.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from synth import RATE, SENTENCES, VOICES, speak

BLOCK = RATE * 10
MAX_ISLAND = RATE * 60  # no island is longer; lets blocks skip islands without synthesising them


@dataclass(frozen=True)
class Island:
    start: float
    end: float
    text: str


def plan_islands(
    seconds: float, spacing_s: float, seed: int = 0, lead_in_s: float = 5.0
) -> list[tuple[float, str, int]]:
    """(start time, text, voice index) of each island: one every `spacing_s` seconds, jittered."""
    rng = random.Random(seed)
    plan, t = [], lead_in_s
    while t < seconds - spacing_s / 2:
        plan.append(
            (
                round(t + rng.uniform(0, spacing_s / 4), 3),
                " ".join(rng.sample(SENTENCES, rng.randint(1, 2))),
                rng.randrange(len(VOICES)),
            )
        )
        t += spacing_s
    return plan


def island_audio(
    seconds: float, spacing_s: float, seed: int = 0, noise: float = 0.0
) -> tuple[Iterator[np.ndarray], list[Island]]:
    """float32 16 kHz blocks of the whole recording, and the islands they contain. Speech is
    synthesised once per distinct (voice, text) and lazily, as the generator reaches it. `noise`
    adds a low noise floor (its RMS as a fraction of full scale) so silence is not digital zero."""
    plan = plan_islands(seconds, spacing_s, seed)
    cache: dict[tuple[int, str], np.ndarray] = {}

    def voice(idx: int, text: str) -> np.ndarray:
        if (idx, text) not in cache:
            cache.clear()  # islands are visited once, in order: keep only the current one
            cache[(idx, text)] = speak(VOICES[idx], text)
        return cache[(idx, text)]

    islands = [
        Island(start, round((int(start * RATE) + voice(v, text).size) / RATE, 3), text) for start, text, v in plan
    ]
    total = int(seconds * RATE)

    def blocks() -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed)
        for at in range(0, total, BLOCK):
            n = min(BLOCK, total - at)
            block = (rng.standard_normal(n).astype(np.float32) * noise) if noise else np.zeros(n, dtype=np.float32)
            for start, text, v in plan:
                a = int(start * RATE)
                if a >= at + n or a + MAX_ISLAND <= at:
                    continue
                audio = voice(v, text)
                b = a + audio.size
                if b <= at:
                    continue
                lo, hi = max(a, at), min(b, at + n)
                block[lo - at : hi - at] += audio[lo - a : hi - a]
            yield block

    return blocks(), islands
