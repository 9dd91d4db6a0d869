"""Model batch speed of each engine, on a GPU where torch sees one (else the CPU), outside the job
pipeline: what a model worker's task spends in `engine.run` for the batches prepare would send.

    python bench/gpu_engines.py REC.wav [--engines whisper-tiny-en resemblyzer] [--single 64] [--record]
    python bench/gpu_engines.py REC.wav --write-plan REC.plan.json     # on a machine with Hark's worker
    python bench/gpu_engines.py REC.flac --plan REC.plan.json ...      # on one without (a lent GPU box)

The recording is cut by Hark's VAD and grouped into batches exactly as prepare does
(worker.tasks.prepare.plan_batches with the deployment's settings). A machine that lacks the
worker's service dependencies (Celery, SQLAlchemy) reads that plan from a JSON written elsewhere.
Each engine loads as a model worker loads it (worker.engines.get_engine: CUDA and float16 where
torch sees a GPU), runs the first batch once untimed (CUDA context, kernels, allocator), and then
every batch is timed from the call to the return of its results, the device synchronised at both
ends. RTF is that wall time over the seconds of speech in the batches; "ms per 10 s" is the same
figure in the unit SenseVoice-Small's published speed uses (70 ms per 10 s of audio). `--single N`
also times the first N segments one per call (batch 1, the unit of Paraformer's published RTF).

Where the recording is a generated meeting (bench/synth.py writes its text beside it), the ASR
engine's word error rate is printed too, so a speed figure never comes from a broken transcript.

`--published-funasr DIR` builds SenseVoice-Small, Paraformer-large (with timestamps, no
punctuation model) and CAM++ at their model cards' sizes with random weights into DIR
(tests/funasr_checkpoints.py, funasr's own model classes) and points the settings at them, for
timing the FunASR engines where the real weights are not at hand: their cost per second of audio
is the real models' (SenseVoice is non-autoregressive CTC; Paraformer's decoder runs once over as
many tokens as its predictor fires, which random weights set arbitrarily), their words are noise,
so no WER is printed for them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from hark.settings import Settings  # noqa: E402
from worker.engines.base import SegmentAudio  # noqa: E402

RATE = 16000


@dataclass
class Plan:
    spans: list[tuple[float, float]]
    batches: list[tuple[int, int]]  # (first, last) segment index, inclusive


def make_plan(recording: Path, settings: Settings) -> Plan:
    """VAD segments and batches as prepare cuts them (needs the worker's dependencies)."""
    from asr_quality import segments

    from worker.engines.asr_whisper import WhisperAsr
    from worker.tasks.prepare import plan_batches

    _, spans = segments(recording, settings)
    clip_s = settings.asr_clip_s if settings.asr_engine == WhisperAsr.name else 0.0
    batches = plan_batches(spans, settings.batch_speech_s, clip_s)
    return Plan(spans, [(b.first_idx, b.last_idx) for b in batches])


def read_plan(path: Path) -> Plan:
    data = json.loads(path.read_text())
    return Plan([tuple(s) for s in data["spans"]], [tuple(b) for b in data["batches"]])


def sync() -> None:
    """Wait for queued GPU work, so a timer read after it covers the work (no-op on a CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def gpu_used_mib() -> float | None:
    """Memory in use on the GPU as the driver sees it (covers CTranslate2's allocations, which
    torch's own counters do not)."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


@dataclass
class Timing:
    engine: str
    device: str
    batches: int
    speech_s: float
    wall_s: float
    cpu_s: float
    single_rtf: float | None
    gpu_mib: float | None
    wer: float | None


def published_funasr(root: Path) -> dict[str, str]:
    """Settings overrides naming published-size random-weight FunASR models under `root`, built
    on first use."""
    from tests.funasr_checkpoints import build_campplus, build_paraformer, build_sensevoice

    dirs = {}
    for setting, build in (
        ("sensevoice_dir", build_sensevoice),
        ("paraformer_dir", build_paraformer),
        ("campplus_dir", build_campplus),
    ):
        path = root / setting.removesuffix("_dir")
        if not (path / "config.yaml").is_file():
            build(path, published=True)
        dirs[setting] = str(path)
    return {**dirs, "paraformer_punc_dir": ""}


def time_engine(
    name: str, settings: Settings, audio: np.ndarray, plan: Plan, single: int, reference: list[str] | None
) -> Timing:
    """The engine over every batch of the plan after one untimed warm-up batch; with `single`,
    also its first `single` segments one per call; with `reference`, the ASR text's WER."""
    from worker.engines import get_engine
    from worker.engines.base import pick_device

    segs = [
        SegmentAudio(i, i, a, b, audio[int(round(a * RATE)) : int(round(b * RATE))])
        for i, (a, b) in enumerate(plan.spans)
    ]
    engine = get_engine(name, settings)
    batches = [segs[first : last + 1] for first, last in plan.batches]
    engine.run(batches[0])  # warm-up, untimed
    sync()
    wall = cpu = 0.0
    results = []
    for batch in batches:
        w, c = time.perf_counter(), time.process_time()
        results += engine.run(batch)
        sync()
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
    speech = sum(len(s.samples) for s in segs) / RATE
    single_rtf = None
    if single:
        chosen = segs[:single]
        w = time.perf_counter()
        for seg in chosen:
            engine.run([seg])
        sync()
        single_rtf = (time.perf_counter() - w) / (sum(len(s.samples) for s in chosen) / RATE)
    wer = None
    if reference and getattr(engine, "kind", "") == "asr":
        from asr_quality import edit_distance, words_of

        hyp = words_of(" ".join(r.text or "" for r in results))
        wer = edit_distance(reference, hyp) / len(reference)
    return Timing(name, pick_device(), len(batches), speech, wall, cpu, single_rtf, gpu_used_mib(), wer)


def environment() -> str:
    """What ran it: the GPU, and the versions that decide kernel choice."""
    import torch

    parts = [f"torch {torch.__version__}"]
    if torch.cuda.is_available():
        parts.insert(0, f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})")
    for module in ("ctranslate2", "faster_whisper"):
        with contextlib.suppress(ImportError):
            parts.append(f"{module} {__import__(module).__version__}")
    return ", ".join(parts)


def cell(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def report_lines(recording: Path, plan: Plan, timings: list[Timing]) -> list[str]:
    speech = sum(b - a for a, b in plan.spans)
    lines = [
        f"Recording `{recording.name}`: {len(plan.spans)} VAD segments, {speech:.0f} s of speech, "
        f"{len(plan.batches)} batches as prepare plans them. {environment()}.",
        "",
        "| engine | device | batches | wall s | CPU s | RTF | ms per 10 s | batch-1 RTF | GPU MiB in use | WER |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in timings:
        rtf = t.wall_s / t.speech_s
        cells = [
            t.engine,
            t.device,
            str(t.batches),
            f"{t.wall_s:.2f}",
            f"{t.cpu_s:.2f}",
            f"{rtf:.4f}",
            f"{rtf * 10000:.1f}",
            cell(t.single_rtf, ".4f"),
            cell(t.gpu_mib, ".0f"),
            cell(t.wer, ".1%"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    from record import report

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recording", type=Path, help="16 kHz mono WAV or FLAC")
    parser.add_argument("--engines", nargs="+", default=["whisper-tiny-en", "resemblyzer"])
    parser.add_argument("--plan", type=Path, help="read segments and batches from this JSON")
    parser.add_argument("--write-plan", type=Path, help="write segments and batches to this JSON and stop")
    parser.add_argument("--single", type=int, default=64, help="segments timed one per call (0: none)")
    parser.add_argument(
        "--published-funasr",
        type=Path,
        metavar="DIR",
        help="time FunASR engines on random-weight models of published size built in DIR",
    )
    parser.add_argument("--title", default="Model batch speed per engine")
    parser.add_argument("--record", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args()

    overrides = published_funasr(args.published_funasr) if args.published_funasr else {}
    settings = Settings.from_env(**overrides)
    if settings.torch_threads > 0:  # as a model worker applies them (worker/tuning.py)
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(settings.torch_threads)
        threadpool_limits(settings.torch_threads)
    plan = read_plan(args.plan) if args.plan else make_plan(args.recording, settings)
    if args.write_plan:
        args.write_plan.write_text(json.dumps({"spans": plan.spans, "batches": plan.batches}))
        print(f"{args.write_plan}: {len(plan.spans)} segments, {len(plan.batches)} batches")
        return 0
    pcm, rate = soundfile.read(str(args.recording), dtype="int16")
    if rate != RATE or pcm.ndim != 1:
        parser.error("the recording must be 16 kHz mono")
    audio = pcm.astype(np.float32) / 32768.0
    from asr_quality import reference_words

    reference = reference_words(args.recording)
    random_weights = {"sensevoice-small", "paraformer-large", "campplus"} if args.published_funasr else set()
    timings = []
    for name in args.engines:
        timings.append(
            time_engine(name, settings, audio, plan, args.single, None if name in random_weights else reference)
        )
        print(timings[-1], flush=True)
    report(args.title, report_lines(args.recording, plan, timings), args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
