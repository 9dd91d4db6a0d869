"""CPU seconds of the prosody emotion engine alone, on a recording cut as the pipeline would.

    python bench/prosody_cost.py [RECORDING] [--minutes 10] [--segment-s 12] [--batch-s 120] [--rounds 3]

Without a recording, a generated meeting (bench/synth.py) of `--minutes`. The audio is cut into
segments of `--segment-s` and grouped into batches of about `--batch-s` seconds of speech (the
defaults of HARK_MERGE_LENGTH_S and HARK_BATCH_SPEECH_S give segments of 10–15 s and batches of
about 120 s), with a transcript line per segment for VADER. Prints the engine's CPU seconds per
round (process time, one thread) and per 10 minutes of audio; compare with the end-to-end CPU of
bench/stages.py on the same kind of recording.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", nargs="?", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--segment-s", type=float, default=12.0)
    parser.add_argument("--batch-s", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from hark.audio import decode_stream, pcm_to_float
    from hark.settings import Settings
    from worker.engines.base import SegmentAudio
    from worker.engines.emotion_prosody import ProsodyEmotion

    with tempfile.TemporaryDirectory() as folder:
        recording = args.recording
        if recording is None:
            from synth import synth_meeting

            recording = Path(folder) / "meeting.wav"
            synth_meeting(recording, 4, args.minutes, seed=0)
        samples = np.concatenate([pcm_to_float(block) for block in decode_stream(str(recording))])
    rate = 16000
    step = int(args.segment_s * rate)
    segments = [
        SegmentAudio(i, i, i * args.segment_s, i * args.segment_s + len(x) / rate, x, "we should ship it on friday")
        for i, x in enumerate(samples[j : j + step] for j in range(0, len(samples), step))
    ]
    per_batch = max(1, round(args.batch_s / args.segment_s))
    batches = [segments[i : i + per_batch] for i in range(0, len(segments), per_batch)]
    engine = ProsodyEmotion()
    engine.load(Settings())
    minutes = len(samples) / rate / 60
    costs = []
    for _ in range(args.rounds):
        started = time.process_time()
        for batch in batches:
            engine.run(batch)
        costs.append(time.process_time() - started)
    median = float(np.median(costs))
    print(
        f"- prosody engine on {minutes:.1f} min ({len(segments)} segments of {args.segment_s:.0f} s, "
        f"{len(batches)} batches): CPU s per round {', '.join(f'{c:.2f}' for c in costs)}; "
        f"median {median:.2f} s, {median * 10 / minutes:.2f} s per 10 min of audio"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
