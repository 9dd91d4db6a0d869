"""Time and memory of diarizing a long, many-speaker recording: clustering plus resegmentation.

    python bench/diarize_scale.py [--windows 20000] [--speakers 20] [--record]

Speaker windows are synthesised (256-dimensional, a common component plus a per-speaker direction
plus per-window noise, like GE2E vectors) over a recording of alternating turns of 2–20 s in VAD
segments, with VAD frame probabilities (speech inside the segments, a short pause every few
seconds), so no audio or model is needed; the figure is the reduce step's own cost. Reports wall
time, peak memory growth of this process, the speaker count found and the share of speech
labelled with the right speaker (best one-to-one mapping).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def synthetic(windows: int, speakers: int, hop: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    common = rng.normal(size=256) * 3
    voices = common + 0.5 * rng.normal(size=(speakers, 256))
    segments, who, starts = [], [], []
    t = 0.0
    while len(starts) < windows:
        speaker = int(rng.integers(speakers))
        length = float(rng.uniform(2, 20))
        segments.append((t, t + length + 1.0))
        for s in np.arange(t, t + length, hop):
            starts.append(s)
            who.append(speaker)
        t += length + 1.0 + float(rng.uniform(0.3, 2))
    starts_a, who_a = np.array(starts[:windows]), np.array(who[:windows])
    vectors = (voices[who_a] + 0.8 * rng.normal(size=(windows, 256))).astype(np.float32)
    return segments, starts_a, starts_a + 1.0, vectors, who_a


def speech_probabilities(segments: list[tuple[float, float]], seed: int = 0):
    """What prepare stores: speech inside the segments, with a 0.2 s pause every 2–6 s."""
    from worker.engines.vad_silero import FRAME_S
    from worker.resegment import SpeechProbabilities

    rng = np.random.default_rng(seed)
    probs = np.zeros(int(segments[-1][1] / FRAME_S) + 1, dtype=np.float32)
    for a, b in segments:
        probs[int(a / FRAME_S) : int(b / FRAME_S)] = 0.9
        t = a + float(rng.uniform(2, 6))
        while t < b - 0.5:
            probs[int(t / FRAME_S) : int((t + 0.2) / FRAME_S)] = 0.1
            t += float(rng.uniform(2, 6))
    return SpeechProbabilities(probs, FRAME_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=20000)
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    from hark.settings import Settings
    from worker.resegment import diarize

    hop = Settings().speaker_hop_s
    segments, starts, ends, vectors, who = synthetic(args.windows, args.speakers, hop)
    segments = [s for s in segments if s[0] <= ends[-1]]
    speech = speech_probabilities(segments)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    found = diarize(segments, starts, ends, vectors, speech=speech)
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_growth = peak - before / 1024
    from scipy.optimize import linear_sum_assignment

    labels = found.labels
    table = np.zeros((args.speakers, int(labels.max()) + 1))
    np.add.at(table, (who, labels), 1)
    rows, cols = linear_sum_assignment(-table)
    accuracy = table[rows, cols].sum() / labels.size
    lines = [
        f"- {args.windows} windows ({args.windows * hop / 3600:.1f} h of speech at a {hop} s hop), "
        f"{args.speakers} synthetic speakers, {len(segments)} VAD segments",
        f"- diarize (cluster + resegment): {took:.1f} s, peak memory growth {peak_growth:.0f} MiB "
        f"(process peak {peak:.0f} MiB, inputs included)",
        f"- speakers found {len(found.centroids)}, windows with the right speaker {accuracy * 100:.1f} %, "
        f"{len(found.turns)} turns and {len(found.overlaps)} overlapped turns",
    ]
    from record import report

    report("Diarization at scale", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
