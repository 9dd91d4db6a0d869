"""Emotion statistics on real meeting speech: a 12-minute AMI mix through the whole pipeline.

    python bench/emotion_ami.py [--minutes 12] [--corpus DIR] [--record]

Builds the mix from the AMI excerpts of the shared corpus (30 s clips, 32-bit float WAV at
16 kHz; see its SOURCES.md): the clips in turn, and once all are used, again in another order,
each repetition rotated by a different number of seconds so that segments do not repeat
sample for sample. No gain or speed change: that would itself move the prosody being measured.
The mix runs through a stack of its own (bench/stages.py: web, CPU worker, model worker, each
in its own processes) with the default engines, and the finished segments are read back.

Printed (and with --record appended to BENCHMARKS.md): the distribution of emotion labels,
valence labels and arousal z-scores (quantiles, share heated), per-speaker baselines, and the
emotion task's CPU seconds against the whole job's.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
import uuid
import wave
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

CORPUS = ROOT.parent.parent / "shared" / "corpus" / "ami-excerpts"
RATE = 16000


def read_float_wav(path: Path) -> np.ndarray:
    """A 32-bit float (WAVE_FORMAT_IEEE_FLOAT) or 16-bit PCM mono WAV as float32 samples."""
    data = path.read_bytes()
    fmt = int.from_bytes(data[20:22], "little")
    if fmt == 1:
        with wave.open(io.BytesIO(data)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    pos = 12
    while pos < len(data):  # walk the RIFF chunks to "data"
        name, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if name == b"data":
            return np.frombuffer(data[pos + 8 : pos + 8 + size], dtype="<f4").copy()
        pos += 8 + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def build_mix(corpus: Path, minutes: float, out: Path, seed: int = 0) -> list[str]:
    """Write the mix as 16-bit PCM WAV; returns the clip order (name@rotation s)."""
    clips = {p.name: read_float_wav(p) for p in sorted(corpus.glob("*.wav"))}
    if not clips:
        raise SystemExit(f"no WAV files in {corpus}")
    rng = random.Random(seed)
    parts, order, total = [], [], 0
    need = int(minutes * 60 * RATE)
    round_no = 0
    while total < need:
        names = sorted(clips)
        if round_no:
            rng.shuffle(names)
        for name in names:
            shift = round_no * 7 % 30  # seconds; 0 in the first round
            x = np.roll(clips[name], -shift * RATE)
            parts.append(x)
            order.append(f"{name}@{shift}")
            total += len(x)
            if total >= need:
                break
        round_no += 1
    mix = np.concatenate(parts)[:need]
    pcm = (np.clip(mix, -1, 1) * 32767).astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return order


def run(recording: Path) -> tuple[list, dict, float]:
    """The recording through a stack of its own; its finished segments, timings, wall seconds."""
    from sqlalchemy import select
    from stages import follow, start_stack

    from hark.apikeys import create_key
    from hark.client import HarkClient
    from hark.db import session_scope
    from hark.models import Job, Segment
    from hark.settings import Settings
    from tests.conftest import isolated_settings

    with isolated_settings(Settings.from_env()) as cfg:
        procs, url = start_stack(cfg, 1, {})
        try:
            with session_scope(cfg.database_url) as s:
                key = create_key(s, "bench")
            client = HarkClient(url, key, timeout=600)
            started = time.monotonic()
            job = client.submit(str(recording), force="true")
            final, _ = follow(client, job["id"], 3600)
            wall = time.monotonic() - started
            if final["status"] != "done":
                raise RuntimeError(f"job ended {final['status']}: {final.get('error')}")
            with session_scope(cfg.database_url) as s:
                jid = uuid.UUID(job["id"])
                segs = s.scalars(select(Segment).where(Segment.job_id == jid).order_by(Segment.idx)).all()
                timings = dict(s.get(Job, jid).timings)
                s.expunge_all()
        finally:
            procs.stop()
    return segs, timings, wall


def report_lines(segs: list, timings: dict, wall: float, order: list[str], minutes: float) -> list[str]:
    from worker.affect import CLEAR_AROUSAL, CLEAR_VALENCE, HEATED_Z

    seconds = sum(g.end_s - g.start_s for g in segs)
    labels = Counter(g.emotion for g in segs)
    valence = [g.valence for g in segs if g.valence is not None]
    vlabels = Counter("positive" if v >= 0.05 else "negative" if v <= -0.05 else "neutral" for v in valence)
    arousal = np.array([g.arousal for g in segs if g.arousal is not None])
    heated = [g for g in segs if g.heated]
    lines = [
        f"- recording: {minutes:.0f} min of AMI excerpts ({len(order)} clips: {', '.join(order[:3])}, …), "
        f"{len(segs)} VAD segments, {seconds:.0f} s of speech; end to end {wall:.1f} s",
        "- emotion labels (segments): "
        + ", ".join(f"{k} {v} ({100 * v / len(segs):.0f} %)" for k, v in labels.most_common()),
        f"- valence (VADER compound, {len(valence)} segments with English words): "
        + ", ".join(f"{k} {v}" for k, v in vlabels.most_common())
        + f"; |valence| ≥ {CLEAR_VALENCE} (clear): {sum(abs(v) >= CLEAR_VALENCE for v in valence)}",
    ]
    if len(arousal):
        q = np.percentile(arousal, [5, 25, 50, 75, 95])
        lines += [
            f"- arousal z ({len(arousal)} segments with a speaker baseline): min {arousal.min():.2f}, "
            + ", ".join(f"p{p} {v:.2f}" for p, v in zip((5, 25, 50, 75, 95), q, strict=True))
            + f", max {arousal.max():.2f}; "
            f"|z| ≥ {CLEAR_AROUSAL} (clear): {int((abs(arousal) >= CLEAR_AROUSAL).sum())}; "
            f"heated (z ≥ {HEATED_Z}): {len(heated)} ({100 * len(heated) / len(arousal):.1f} %)",
        ]
        edges = [-np.inf, -2, -1, -0.5, 0.5, 1, 1.5, 2, np.inf]
        counts, _ = np.histogram(arousal, bins=edges)
        names = ["< −2", "−2…−1", "−1…−0.5", "−0.5…0.5", "0.5…1", "1…1.5", "1.5…2", "≥ 2"]
        lines.append("- arousal histogram: " + ", ".join(f"{n}: {c}" for n, c in zip(names, counts, strict=True)))
        both = [g for g in segs if g.arousal is not None and g.valence is not None]
        quadrants = Counter(
            (
                "aroused" if g.arousal >= CLEAR_AROUSAL else "calm" if g.arousal <= -CLEAR_AROUSAL else "mid",
                "positive" if g.valence >= CLEAR_VALENCE else "negative" if g.valence <= -CLEAR_VALENCE else "mid",
            )
            for g in both
        )
        lines.append(
            f"- (arousal, valence) at the label thresholds ({len(both)} segments with both): "
            + ", ".join(f"{a}/{v} {n}" for (a, v), n in sorted(quadrants.items()))
        )
        clear = sorted((g for g in both if abs(g.arousal) >= CLEAR_AROUSAL), key=lambda g: -g.arousal)
        lines.append(
            "- segments with clear arousal, (arousal, valence): "
            + ", ".join(f"({g.arousal:.2f}, {g.valence:+.2f})" for g in clear)
        )
    speakers = sorted({g.speaker for g in segs if g.speaker})
    lines += [
        "",
        "| speaker | segments | F0 median Hz | rate syl/s | pause ratio | heated |",
        "|---|---|---|---|---|---|",
    ]
    for sp in speakers:
        mine = [g for g in segs if g.speaker == sp and g.prosody]
        f0 = [g.prosody["f0_median_hz"] for g in mine if g.prosody.get("f0_median_hz")]
        rate = [g.prosody["speaking_rate"] for g in mine if g.prosody.get("speaking_rate") is not None]
        pause = [g.prosody["pause_ratio"] for g in mine if g.prosody.get("pause_ratio") is not None]
        med = lambda xs: f"{np.median(xs):.2f}" if xs else "–"  # noqa: E731
        lines.append(
            f"| {sp} | {len(mine)} | {med(f0)} | {med(rate)} | {med(pause)} | {sum(bool(g.heated) for g in mine)} |"
        )
    lines.append("")
    for g in heated[:5]:
        p = g.prosody
        lines.append(
            f"- heated: {g.speaker} at {g.start_s:.1f} s, arousal {g.arousal:.2f}, loudness {p.get('loudness_db')} dB, "
            f"rate {p.get('speaking_rate')} syl/s, F0 {p.get('f0_median_hz')} Hz: “{(g.text or '').strip()[:80]}”"
        )
    # jobs.timings: each task's total under "<task>_cpu_s", its parts under "<part>_cpu_s".
    cpu = {k.removesuffix("_cpu_s"): v for k, v in timings.items() if k.endswith("_cpu_s")}
    total_cpu = sum(cpu.get(k, 0.0) for k in ("prepare", "asr", "embed", "emotion", "reduce", "diarize"))
    if "emotion" in cpu and total_cpu:
        lines.append(
            f"- emotion tasks' CPU {cpu['emotion']:.2f} s (engine {cpu.get('emotion_model', 0.0):.2f} s) of "
            f"{total_cpu:.1f} s for all tasks of the job ({100 * cpu['emotion'] / total_cpu:.1f} %); "
            f"reduce's affect step {cpu.get('affect', 0.0):.3f} s"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--record", action="store_true", help="append the result to BENCHMARKS.md")
    args = parser.parse_args()

    from record import report

    from tests.conftest import _load_service_env

    _load_service_env()
    with tempfile.TemporaryDirectory() as folder:
        recording = Path(folder) / "ami-mix.wav"
        order = build_mix(args.corpus, args.minutes, recording)
        segs, timings, wall = run(recording)
    report(
        "Emotion statistics on a 12-minute AMI mix", report_lines(segs, timings, wall, order, args.minutes), args.record
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
