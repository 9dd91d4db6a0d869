"""Diarization error rate of a Hark RTTM export against a reference RTTM.

    python bench/der.py REFERENCE.rttm HYPOTHESIS.rttm [--collar 0.0] [--record]

Scored with pyannote.metrics (install with the `bench` extra), overlap included, no collar by
default: the strictest reading. `bench/sample_der.sh` runs the whole pipeline on the example
recording and scores it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def load_rttm(path: str):
    from pyannote.core import Annotation, Segment

    annotation = Annotation()
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            annotation[Segment(start, start + duration)] = parts[7]
    return annotation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference")
    parser.add_argument("hypothesis")
    parser.add_argument(
        "--collar", type=float, default=0.0, help="seconds forgiven on either side of each reference boundary (NIST -c)"
    )
    parser.add_argument("--record", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args()
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = load_rttm(args.reference), load_rttm(args.hypothesis)
    # pyannote's collar is the whole width around a boundary: twice the NIST figure.
    metric = DiarizationErrorRate(collar=2 * args.collar, skip_overlap=False)
    detail = metric(ref, hyp, detailed=True)
    total = detail["total"]
    lines = [
        f"- reference `{args.reference}`: {len(ref.labels())} speakers, {total:.2f} s of speech",
        f"- hypothesis: {len(hyp.labels())} speakers",
        f"- DER {detail['diarization error rate'] * 100:.1f} % (collar ±{args.collar} s, overlap scored): "
        f"missed {detail['missed detection'] / total * 100:.1f} %, false alarm "
        f"{detail['false alarm'] / total * 100:.1f} %, confusion {detail['confusion'] / total * 100:.1f} %",
    ]
    from record import report

    report("Diarization error rate", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
