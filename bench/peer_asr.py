"""Hark beside a peer on the same recording and the same Whisper model: faster-whisper's own batched
pipeline (`BatchedInferencePipeline`, its built-in VAD) doing speech recognition only, against Hark
doing recognition, speaker diarization and emotion end to end through the API (upload to done).

    python bench/peer_asr.py meeting.wav --hark-seconds 61.2 [--record]

`python bench/stages.py --peer` runs both back to back on a generated meeting (Hark in a stack of its
own, then the peer) and prints the ratio. The goal in issue 8 is a ratio (Hark / peer) of at most 1.0.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from asr_quality import edit_distance, reference_words, words_of  # noqa: E402
from record import report  # noqa: E402

from worker.engines.asr_whisper import embedded_model_dir  # noqa: E402


@dataclass
class PeerRun:
    seconds: float  # wall, model loading excluded, decoding included
    duration: float  # the audio duration it reports
    segments: int
    cpu: float
    text: str


def peer_run(path: Path, batch_size: int, threads: int) -> PeerRun:
    """The peer's batched ASR over the file, timed."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(str(embedded_model_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
    pipeline = BatchedInferencePipeline(model=model)
    started, cpu = time.monotonic(), time.process_time()
    segments, info = pipeline.transcribe(str(path), batch_size=batch_size, language="en", beam_size=1)
    texts = [s.text for s in segments]  # the generator does the work
    return PeerRun(
        time.monotonic() - started, float(info.duration), len(texts), time.process_time() - cpu, " ".join(texts)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", type=Path)
    parser.add_argument("--hark-seconds", type=float, required=True, help="Hark's upload-to-done time on the same file")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--record", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args()
    peer = peer_run(args.recording, args.batch_size, args.threads)
    seconds, duration, count = peer.seconds, peer.duration, peer.segments
    ratio = args.hark_seconds / seconds
    lines = [
        f"- recording `{args.recording.name}`: {duration / 60:.1f} min",
        f"- faster-whisper `BatchedInferencePipeline` (tiny.en int8, batch {args.batch_size}, its VAD), ASR only: "
        f"{seconds:.1f} s (RTF {seconds / duration:.3f}), {count} segments",
        f"- Hark end to end (upload → ASR + speakers + emotion → done): {args.hark_seconds:.1f} s "
        f"(RTF {args.hark_seconds / duration:.3f})",
        f"- ratio Hark / peer: {ratio:.2f} (goal ≤ 1.0)",
    ]
    ref = reference_words(args.recording)
    if ref:
        lines.append(
            f"- the peer's word error rate against the generated meeting's text: "
            f"{100 * edit_distance(ref, words_of(peer.text)) / len(ref):.1f} %"
        )
    report("Side by side with faster-whisper's batched pipeline", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
