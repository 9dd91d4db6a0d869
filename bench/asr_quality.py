"""Transcript quality and cost of the Whisper engine's variants, in process, on recordings with
reference text: word error rate, and how many correctly recognised words land in the right
speaker's turn when the true turns are given (what word timings are for: worker/assemble.py gives
each word the speaker of the turn at its middle).

    python bench/asr_quality.py [--variants per-segment packed packed-estimated-words] [--record]

Recordings: generated meetings (bench/synth.py, espeak-ng voices) without overlapping speech, whose
turns and text are known; the 10-minute 4-speaker meeting of the side-by-side run (10 % of turns
overlap, so its reference order is only approximate); and the real sample recording, which has no
reference text: there each variant is compared with the per-segment transcript. Segments come from
the deployment's VAD settings and batches from `batch_speech_s`, as in a job.

Variants: `per-segment` is one Whisper clip per VAD segment, 8 clips per forward pass, with word
timestamps (Hark before issue 8's packing); `packed` packs a batch's consecutive segments into clips
of up to 30 s, batches ending where a clip ends, and the engine's own clips per forward pass (by
CPU vendor: 1 on Intel, 8 elsewhere); `packed-one-clip-per-pass` forces 1; `packed-estimated-words` also skips
the word-timestamp pass and estimates word times from
Whisper's segment timestamps. All run with the same thread count (HARK_TORCH_THREADS, else torch's).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from hark.settings import Settings  # noqa: E402
from worker.assemble import TurnIndex  # noqa: E402
from worker.engines.base import SegmentAudio, SegmentResult  # noqa: E402
from worker.resegment import Turn  # noqa: E402

# Settings of each variant, and clips per forward pass (None: the engine's own choice).
VARIANTS: dict[str, tuple[dict, int | None]] = {
    "per-segment": ({"asr_clip_s": 0.0, "asr_word_timestamps": True}, 8),
    "packed": ({"asr_clip_s": 30.0, "asr_word_timestamps": True}, None),
    "packed-one-clip-per-pass": ({"asr_clip_s": 30.0, "asr_word_timestamps": True}, 1),
    "packed-estimated-words": ({"asr_clip_s": 30.0, "asr_word_timestamps": False}, None),
}


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between word lists, one row of the table at a time in numpy: the
    insertions along a row are a running minimum, so an hour's words take seconds (`align`, which
    also gives the matching pairs, is a Python loop per cell)."""
    ids: dict[str, int] = {}
    r = [ids.setdefault(w, len(ids)) for w in ref]
    h = np.array([ids.setdefault(w, len(ids)) for w in hyp], dtype=np.int64)
    steps = np.arange(len(h) + 1)
    row = steps.copy()
    base = np.empty(len(h) + 1, dtype=np.int64)
    for i, word in enumerate(r, start=1):
        base[0] = i
        np.minimum(row[:-1] + (h != word), row[1:] + 1, out=base[1:])  # substitution or match; deletion
        row = np.minimum.accumulate(base - steps) + steps  # then insertions, left to right
    return int(row[-1])


def reference_words(recording: Path) -> list[str] | None:
    """The words of a generated meeting (bench/synth.py writes its turns beside it as JSON), in
    the order the turns start; None for a recording without one."""
    turns = recording.with_suffix(".json")
    if not turns.is_file():
        return None
    return words_of(" ".join(t["text"] for t in sorted(json.loads(turns.read_text()), key=lambda t: t["start"])))


def align(ref: list[str], hyp: list[str]) -> tuple[int, list[tuple[int, int]]]:
    """Levenshtein distance between word lists, and the (ref, hyp) index pairs of equal words on
    one optimal path."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] == hyp[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return int(d[n, m]), pairs[::-1]


@dataclass
class Recording:
    name: str
    path: Path
    turns: list[dict] | None  # reference turns with text and speaker; None: no reference
    overlap: bool = False  # turns overlap: no speaker scoring
    rttm: Path | None = None  # reference speaker turns without text


def segments(path: Path, settings: Settings) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The recording as float32 samples and its VAD segments, as prepare cuts them."""
    from worker.engines.vad_silero import SileroVad
    from worker.tasks.prepare import vad_options

    pcm, rate = soundfile.read(str(path), dtype="int16")
    assert rate == 16000 and pcm.ndim == 1, "16 kHz mono"
    stream = SileroVad().stream()
    for i in range(0, pcm.size, 160000):
        stream.feed(pcm[i : i + 160000])
    return pcm.astype(np.float32) / 32768.0, stream.segments(vad_options(settings, {}))


def transcribe(engine, audio: np.ndarray, spans, settings: Settings) -> tuple[list[SegmentResult], float, float]:
    """The engine over the recording's batches; returns results, wall and CPU seconds."""
    from worker.tasks.prepare import plan_batches

    segs = [
        SegmentAudio(i, i, a, b, audio[int(round(a * 16000)) : int(round(b * 16000))]) for i, (a, b) in enumerate(spans)
    ]
    wall, cpu = time.monotonic(), time.process_time()
    results = []
    for batch in plan_batches(spans, settings.batch_speech_s, engine.clip_s):
        results += engine.run(segs[batch.first_idx : batch.last_idx + 1])
    return results, time.monotonic() - wall, time.process_time() - cpu


def speaker_accuracy(turns: list[dict], results: list[SegmentResult]) -> float:
    """Of the hypothesis words equal to the reference word they align with, the share whose middle
    lies in the turn of that word's speaker (turns must not overlap)."""
    ordered = sorted(turns, key=lambda t: t["start"])
    ref = [(w, t["speaker"]) for t in ordered for w in words_of(t["text"])]
    hyp = [(w, (x["start"] + x["end"]) / 2) for r in results for x in r.words or [] for w in words_of(x["word"])]
    index = TurnIndex([Turn(t["start"], t["end"], t["speaker"]) for t in ordered])
    _, pairs = align([w for w, _ in ref], [w for w, _ in hyp])
    right = sum(index.at(hyp[j][1]) == ref[i][1] for i, j in pairs)
    return right / len(pairs) if pairs else 0.0


def placement_agreement(rttm: Path, first: list[SegmentResult], other: list[SegmentResult]) -> float:
    """For a recording with reference turns but no text: of the words two variants share, the share
    whose middles fall in the same reference speaker's turn."""
    from tests.der import read_rttm

    index = TurnIndex([Turn(a, b, spk) for a, b, spk in sorted(read_rttm(rttm.read_text()))])
    a = [(w, (x["start"] + x["end"]) / 2) for r in first for x in r.words or [] for w in words_of(x["word"])]
    b = [(w, (x["start"] + x["end"]) / 2) for r in other for x in r.words or [] for w in words_of(x["word"])]
    _, pairs = align([w for w, _ in a], [w for w, _ in b])
    return sum(index.at(a[i][1]) == index.at(b[j][1]) for i, j in pairs) / len(pairs) if pairs else 0.0


def make_recordings(folder: Path) -> list[Recording]:
    from synth import synth_meeting

    out = []
    for seed, speakers in ((21, 3), (22, 4)):
        path = folder / f"clean{seed}.wav"
        turns = synth_meeting(path, speakers, 5.0, seed=seed, overlap=0.0)
        out.append(
            Recording(
                f"generated 5 min, {speakers} speakers, no overlap (seed {seed})", path, [t.__dict__ for t in turns]
            )
        )
    path = folder / "meeting.wav"
    turns = synth_meeting(path, 4, 10.0)  # the side-by-side meeting (bench/stages.py --peer)
    out.append(
        Recording("generated 10 min, 4 speakers, 10 % overlap (seed 0)", path, [t.__dict__ for t in turns], True)
    )
    sample = ROOT / "examples" / "sample.wav"
    out.append(Recording("sample (real speech, no reference text)", sample, None, rttm=sample.with_suffix(".rttm")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    import torch
    from record import report

    from worker.engines.asr_whisper import WhisperAsr

    base = Settings.from_env()
    engines = {}
    for name in args.variants:
        overrides, batch_size = VARIANTS[name]
        engines[name] = WhisperAsr()
        engines[name].load(replace(base, **overrides))
        engines[name].batch_size = batch_size or engines[name].batch_size
    rows = []
    cost = {name: [0.0, 0.0] for name in args.variants}
    with tempfile.TemporaryDirectory() as folder:
        recordings = make_recordings(Path(folder))
        for rec in recordings:
            audio, spans = segments(rec.path, base)
            texts: dict[str, str] = {}
            found: dict[str, list[SegmentResult]] = {}
            for name in args.variants:
                results, wall, cpu = transcribe(engines[name], audio, spans, base)
                cost[name][0] += wall
                cost[name][1] += cpu
                texts[name] = " ".join(r.text or "" for r in results)
                found[name] = results
                hyp = words_of(texts[name])
                if rec.turns is not None:
                    ref = words_of(" ".join(t["text"] for t in sorted(rec.turns, key=lambda t: t["start"])))
                    errors = edit_distance(ref, hyp)
                    wer = f"{100 * errors / len(ref):.1f} %"
                    speakers = "–" if rec.overlap else f"{100 * speaker_accuracy(rec.turns, results):.1f} %"
                else:
                    first = words_of(texts[args.variants[0]])
                    errors = edit_distance(first, hyp)
                    wer = f"{100 * errors / max(1, len(first)):.1f} % vs {args.variants[0]}"
                    speakers = "–"
                    if rec.rttm is not None:
                        agree = placement_agreement(rec.rttm, found[args.variants[0]], results)
                        speakers = f"{100 * agree:.1f} % as {args.variants[0]}"
                rows.append(f"| {rec.name} | {len(spans)} | {name} | {wer} | {speakers} | {cpu:.1f} s |")
                print(rows[-1], flush=True)
    lines = [
        f"Whisper tiny.en int8 in process, threads: {base.torch_threads or torch.get_num_threads()}; VAD "
        "segments as prepare cuts "
        f"them (merge_length_s {base.merge_length_s:g}), batches of {base.batch_speech_s:g} s of speech. "
        "Speaker words: correctly recognised words whose middle lies in their true speaker's turn "
        "(true turns given, as worker/assemble.py assigns words); on the sample, which has reference turns "
        "but no text, the share of shared words placed in the same reference speaker's turn as the first "
        "variant places them.",
        "",
        "| recording | segments | variant | WER | speaker words | ASR CPU |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *[f"- {name}: {wall:.1f} s wall, {cpu:.1f} s CPU in all" for name, (wall, cpu) in cost.items()],
    ]
    report("Whisper variants: transcript quality and cost", lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
