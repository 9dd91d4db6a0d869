"""Diarization in one process: VAD, speaker windows, clustering and resegmentation, scored by DER.

    python bench/diarize_offline.py [--minutes 4] [--speakers 2 4 8 12] [--long 20] [--record]

The same worker code as a job's reduce step (worker.clustering, worker.resegment), without the web
app, broker and database around it, so the diarization itself can be measured quickly on the
shared sample and on generated meetings (bench/synth.py, seed = speaker count). Prints DER
(pyannote.metrics, overlap scored) with no collar and with the usual forgiveness collar of 0.25 s
either side of each reference boundary (NIST md-eval's `-c 0.25`; pyannote's `collar` argument
is the whole width, 0.5), with the speaker count estimated and given. `bench/synth_der.py`
measures the same through the whole pipeline. `--long M` adds meetings of 4 and 8 speakers lasting
M minutes (seed 7), long enough that clustering goes through its sampled two-stage path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from worker.resegment import SpeechProbabilities

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SAMPLE = ROOT / "examples" / "sample.wav"


@dataclass
class Embedded:
    """A recording's VAD segments and speaker windows, what reduce reads from the database."""

    segments: list[tuple[float, float]]
    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray
    speech: SpeechProbabilities  # what prepare stores beside the PCM, as reduce reads it back


def embed(path: Path, window_s: float, hop_s: float, pass_s: float = 0.0) -> Embedded:
    import soundfile

    from hark.settings import Settings
    from worker.engines.base import SegmentAudio
    from worker.engines.speaker_resemblyzer import ResemblyzerSpeaker
    from worker.engines.vad_silero import FRAME_S, SileroVad, VadOptions
    from worker.resegment import SpeechProbabilities

    pcm, rate = soundfile.read(str(path), dtype="int16")
    assert rate == 16000, "16 kHz mono WAV expected"
    stream = SileroVad().stream()
    for a in range(0, pcm.size, 16000 * 60):
        stream.feed(pcm[a : a + 16000 * 60])
    cfg = Settings.from_env(speaker_window_s=window_s, speaker_hop_s=hop_s, speaker_pass_s=pass_s)
    # The segmentation prepare uses (worker.tasks.prepare.vad_options), merging included.
    segments = stream.segments(VadOptions.from_settings(cfg))
    engine = ResemblyzerSpeaker()
    engine.load(cfg)
    samples = pcm.astype(np.float32) / 32768
    batch = [
        SegmentAudio(segment_id=i, idx=i, start_s=s, end_s=e, samples=samples[int(s * rate) : int(e * rate)])
        for i, (s, e) in enumerate(segments)
    ]
    windows = [w for r in engine.run(batch) for w in r.windows]
    return Embedded(
        segments,
        np.array([w.start_s for w in windows]),
        np.array([w.end_s for w in windows]),
        np.array([w.vector for w in windows], dtype=np.float32),
        SpeechProbabilities.from_bytes(
            SpeechProbabilities(stream.probabilities(), FRAME_S).to_bytes(), FRAME_S, cfg.vad_threshold
        ),
    )


def diarize(rec: Embedded, num_speakers: int | None = None) -> list[tuple[float, float, str]]:
    from worker.clustering import ClusterOptions
    from worker.resegment import diarize as diarize_windows

    result = diarize_windows(
        rec.segments, rec.starts, rec.ends, rec.vectors, ClusterOptions(num_speakers=num_speakers), rec.speech
    )
    return [(t.start_s, t.end_s, t.speaker) for t in result.turns + result.overlaps]


def score(
    reference: list[tuple[float, float, str]], hypothesis: list[tuple[float, float, str]], collar: float
) -> float:
    """DER with `collar` seconds forgiven on either side of every reference boundary."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for i, (s, e, name) in enumerate(reference):
        ref[Segment(s, e), i] = name
    for i, (s, e, name) in enumerate(hypothesis):
        hyp[Segment(s, e), i] = name
    return abs(DiarizationErrorRate(collar=2 * collar, skip_overlap=False)(ref, hyp))


def read_rttm(path: Path) -> list[tuple[float, float, str]]:
    out = []
    for line in path.read_text().splitlines():
        p = line.split()
        if p and p[0] == "SPEAKER":
            out.append((float(p[3]), float(p[3]) + float(p[4]), p[7]))
    return out


def evaluate(name: str, wav: Path, rttm: Path, true_count: int, rec: Embedded) -> str:
    reference = read_rttm(rttm)
    cells = []
    for given in (None, true_count):
        started = time.perf_counter()
        hyp = diarize(rec, given)
        took = time.perf_counter() - started
        found = len({t[2] for t in hyp})
        cells.append((found, score(reference, hyp, 0.0), score(reference, hyp, 0.25), took))
    (found, d0, d25, took), (_, n0, n25, _) = cells
    return (
        f"| {name} | {true_count} | {found} | {d0 * 100:.1f} % | {d25 * 100:.1f} % | {n0 * 100:.1f} % | "
        f"{n25 * 100:.1f} % | {rec.vectors.shape[0]} | {took:.2f} s |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4)
    parser.add_argument("--speakers", type=int, nargs="*", default=[2, 4, 8, 12])
    parser.add_argument("--long", type=float, default=0, help="also 4- and 8-speaker meetings this many minutes long")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    from synth import synth_meeting

    from hark.settings import Settings

    cfg = Settings.from_env()  # HARK_SPEAKER_WINDOW_S / _HOP_S / _PASS_S try other windows
    rows = [
        "| recording | speakers | found | DER est. | DER est. ±0.25 s | DER given | DER given ±0.25 s | windows "
        "| reduce |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(rows), flush=True)
    rows.append(
        evaluate(
            "sample",
            SAMPLE,
            SAMPLE.with_suffix(".rttm"),
            2,
            embed(SAMPLE, cfg.speaker_window_s, cfg.speaker_hop_s, cfg.speaker_pass_s),
        )
    )
    print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(n, args.minutes, n) for n in args.speakers] + (
            [(4, args.long, 7), (8, args.long, 7)] if args.long else []
        )
        for n, minutes, seed in runs:
            wav = Path(tmp) / f"meeting{n}-{minutes:g}.wav"
            synth_meeting(wav, n, minutes, seed=seed)
            rec = embed(wav, cfg.speaker_window_s, cfg.speaker_hop_s, cfg.speaker_pass_s)
            rows.append(evaluate(f"generated {minutes:g} min, seed {seed}", wav, wav.with_suffix(".rttm"), n, rec))
            print(rows[-1], flush=True)
    lines = [
        f"In-process diarization (bench/diarize_offline.py), windows {cfg.speaker_window_s} s / hop "
        f"{cfg.speaker_hop_s} s"
        + (f", windows read off passes restarted every {cfg.speaker_pass_s} s" if cfg.speaker_pass_s else "")
        + "; DER overlap scored, no collar and a ±0.25 s collar, count estimated and given; "
        "generated meetings from bench/synth.py:",
        "",
        *rows,
    ]
    from record import report

    report("Diarization, in process", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
