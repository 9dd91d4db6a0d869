"""Speaker verification on real voices: the AMI people who appear in more than one shared clip.

    python bench/voice_calibration.py [--corpus DIR] [--engine resemblyzer|campplus]

Each (person, clip) is embedded as the pipeline embeds a job's speaker: the person's reference
turns from the RTTM cut into the speaker engine's windows, and the plain mean of the window
vectors as the sample (worker/resegment.py does the same for a job's speaker centroid). The
turns include the stretches where someone else speaks too (as a diarized speaker's do); with
`--solo` only the stretches where the person alone speaks are used, but in these 30 s clips most
people then have under a second left, so the default keeps the overlap.

Trials: target = the same person in two *different* clips (what naming a voice in a new meeting
is); non-target = two different people, in the same clip or not (people in one meeting share a
room and microphone, the hardest case). Scores are worker/voices.py `score` (the cosine of the
centroids after removing the common GE2E component). Printed: trial counts, the equal error rate,
and the false-accept / false-reject rate at the shipped threshold (worker/voices.py THRESHOLD).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from emotion_ami import read_float_wav  # noqa: E402

from hark.audio import SAMPLE_RATE  # noqa: E402
from hark.settings import Settings  # noqa: E402
from worker.engines.base import SegmentAudio  # noqa: E402
from worker.voices import THRESHOLD, score  # noqa: E402

CORPUS = ROOT.parent.parent / "shared" / "corpus" / "ami-excerpts"
MIN_PIECE_S = 0.5


def person_spans(rttm: Path, solo: bool) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(clip, person) → the person's turns, or (solo) the stretches where that person alone speaks."""
    turns: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for line in rttm.read_text(encoding="utf-8").splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            turns[f[1]].append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    out: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for clip, ts in turns.items():
        for a, b, who in ts:
            pieces = [(a, b)]
            for c, d, other in ts:
                if other == who or not solo:
                    continue
                pieces = [p for s, e in pieces for p in ((s, min(e, c)), (max(s, d), e)) if p[1] - p[0] > 1e-3]
            out[(clip, who)].extend(p for p in pieces if p[1] - p[0] >= MIN_PIECE_S)
    return out


def load_engine(name: str):  # type: ignore[no-untyped-def]
    settings = Settings.from_env()
    if name == "campplus":
        from worker.engines.speaker_campplus import CamPlusSpeaker

        engine = CamPlusSpeaker()
    else:
        from worker.engines.speaker_resemblyzer import ResemblyzerSpeaker

        engine = ResemblyzerSpeaker()
    engine.load(settings)
    return engine


def samples(corpus: Path, engine_name: str, solo: bool) -> list[tuple[str, str, np.ndarray]]:
    """(person, clip, centroid) for every person-clip with at least one window."""
    engine = load_engine(engine_name)
    found = []
    audio: dict[str, np.ndarray] = {}
    for (clip, who), spans in sorted(person_spans(corpus / "reference.rttm", solo).items()):
        if clip not in audio:
            audio[clip] = read_float_wav(corpus / f"{clip}.wav")
        x = audio[clip]
        batch = [
            SegmentAudio(i, i, a, b, x[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]) for i, (a, b) in enumerate(spans)
        ]
        windows = sorted((w for r in engine.run(batch) for w in r.windows), key=lambda w: w.start_s)
        if windows:
            found.append((who, clip, np.stack([w.vector for w in windows]).mean(axis=0)))
    return found


def eer(target: np.ndarray, non: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the score where false accepts and false rejects meet."""
    points = np.unique(np.concatenate([target, non]))
    far = np.array([np.mean(non >= t) for t in points])
    frr = np.array([np.mean(target < t) for t in points])
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2), float(points[i])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--engine", default="resemblyzer")
    parser.add_argument("--solo", action="store_true", help="only the stretches where the person alone speaks")
    args = parser.parse_args()
    found = samples(args.corpus, args.engine, args.solo)
    target, non, non_apart = [], [], []
    for i, (p1, c1, v1) in enumerate(found):
        for p2, c2, v2 in found[i + 1 :]:
            s = score(v1, v2)
            if p1 == p2 and c1 != c2:
                target.append(s)
            elif p1 != p2:
                non.append(s)
                if c1 != c2:
                    non_apart.append(s)
    t, n = np.array(target), np.array(non)
    rate, at = eer(t, n)
    people = {p for p, _, _ in found}
    print(f"engine={args.engine} people={len(people)} samples={len(found)} target={t.size} non-target={n.size}")
    print(f"EER={rate:.3f} at score {at:.3f}")
    for i, (p1, c1, v1) in enumerate(found):
        for p2, c2, v2 in found[i + 1 :]:
            if p1 == p2:
                print(f"  target {p1} {c1}/{c2}: {score(v1, v2):.3f}")
    print(f"target scores: min {t.min():.3f} median {np.median(t):.3f} max {t.max():.3f}")
    print(f"non-target scores: median {np.median(n):.3f} p99 {np.quantile(n, 0.99):.3f} max {n.max():.3f}")
    apart = np.array(non_apart)
    print(
        f"shipped threshold {THRESHOLD}: FAR={np.mean(n >= THRESHOLD):.4f} ({int(np.sum(n >= THRESHOLD))} of {n.size}),"
        f" in different clips {np.mean(apart >= THRESHOLD):.4f} (max {apart.max():.3f} of {apart.size}),"
        f" FRR={np.mean(t < THRESHOLD):.3f}"
    )


if __name__ == "__main__":
    main()
