"""Diarization on generated meetings of 2, 4, 8 and 12 speakers, through the whole pipeline.

    source infra/bootstrap.sh && python bench/synth_der.py [--minutes 5] [--record]

For each meeting (bench/synth.py, fixed seeds) the recording goes through `infra/demo.sh` twice:
with the speaker count estimated, and with the true count given. Prints DER (collar 0, overlap
scored) and whether the count was right; `--record` appends the table to BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from der import load_rttm  # noqa: E402
from synth import synth_meeting  # noqa: E402


def diarize(path: Path, extra: list[str]) -> Path:
    out = path.with_suffix(".hyp.rttm" if not extra else ".hyp-n.rttm")
    with out.open("w") as f:
        subprocess.run(["bash", str(ROOT / "infra" / "demo.sh"), str(path), "--format", "rttm", *extra],
                       check=True, stdout=f, stderr=subprocess.DEVNULL)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--speakers", type=int, nargs="+", default=[2, 4, 8, 12])
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    from pyannote.metrics.diarization import DiarizationErrorRate

    rows = ["| speakers | found (estimated) | DER estimated | DER with true count |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.speakers:
            wav = Path(tmp) / f"meeting{n}.wav"
            synth_meeting(wav, n, args.minutes, seed=n)
            ref = load_rttm(str(wav.with_suffix(".rttm")))
            scores = []
            for extra in ([], ["--num-speakers", str(n)]):
                hyp = load_rttm(str(diarize(wav, extra)))
                metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
                scores.append((len(hyp.labels()), abs(metric(ref, hyp))))
            rows.append(f"| {n} | {scores[0][0]} | {scores[0][1] * 100:.1f} % | {scores[1][1] * 100:.1f} % |")
            print(rows[-1], flush=True)
    lines = [f"Generated meetings of {args.minutes:g} min (bench/synth.py, espeak-ng voices, seed = speaker count):", "", *rows]
    from record import report

    report("Diarization on generated meetings", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
