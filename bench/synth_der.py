"""Diarization on generated meetings of 2, 4, 8 and 12 speakers, through the whole pipeline.

    source infra/bootstrap.sh && python bench/synth_der.py [--minutes 5] [--record]

For each meeting (bench/synth.py, fixed seeds) the recording goes through `infra/demo.sh` (or the
script named by HARK_DEMO, with its interface) twice: with the speaker count estimated, and with
the true count given. Prints the count found and DER (overlap scored) with no collar and with a
±0.25 s collar; `--record` writes the table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
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
        demo = os.environ.get("HARK_DEMO", str(ROOT / "infra" / "demo.sh"))
        # --force: the same recording is submitted twice (count estimated, then given), and a
        # tenant's repeated upload would otherwise return the first job.
        subprocess.run(
            ["bash", demo, str(path), "--format", "rttm", "--force", *extra],
            check=True,
            stdout=f,
            stderr=subprocess.DEVNULL,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--speakers", type=int, nargs="+", default=[2, 4, 8, 12])
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    from pyannote.metrics.diarization import DiarizationErrorRate

    rows = [
        "| speakers | found (estimated) | DER estimated | DER estimated ±0.25 s | DER with true count |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.speakers:
            wav = Path(tmp) / f"meeting{n}.wav"
            synth_meeting(wav, n, args.minutes, seed=n)
            ref = load_rttm(str(wav.with_suffix(".rttm")))
            scores = []
            for extra in ([], ["--num-speakers", str(n)]):
                hyp = load_rttm(str(diarize(wav, extra)))
                # pyannote's collar is the whole width: 0.5 forgives 0.25 s either side.
                strict, forgiving = (DiarizationErrorRate(collar=c, skip_overlap=False) for c in (0.0, 0.5))
                scores.append((len(hyp.labels()), abs(strict(ref, hyp)), abs(forgiving(ref, hyp))))
            rows.append(
                f"| {n} | {scores[0][0]} | {scores[0][1] * 100:.1f} % | {scores[0][2] * 100:.1f} % | "
                f"{scores[1][1] * 100:.1f} % |"
            )
            print(rows[-1], flush=True)
    lines = [
        f"Generated meetings of {args.minutes:g} min (bench/synth.py, espeak-ng voices, seed = speaker count):",
        "",
        *rows,
    ]
    from record import report

    report("Diarization on generated meetings", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
