"""Who spoke when on real recordings, through the whole pipeline, scored against their references.

    source infra/bootstrap.sh && python bench/real_der.py [FOLDER] [--long MINUTES] [--record]
        [--env HARK_SETTING=value ...]

FOLDER (default ../shared/corpus/ami-excerpts) holds WAVs and a reference.rttm, optionally a
reference.uem (bench/real_corpus.py reads it); any folder laid out that way works. One stack of
its own (gunicorn web, a CPU worker and a model worker in their own processes, with this
checkout's PostgreSQL, Redis and S3) takes every recording through the HTTP API twice, with the
speaker count estimated and with the true count given (`num_speakers`), and the RTTM export of
each job is scored with pyannote.metrics inside the UEM:

- DER with overlap scored, no collar and a ±0.25 s collar (NIST md-eval's `-c 0.25`; pyannote's
  `collar` is the whole width), and its parts: missed speech, false alarm, confusion;
- speakers found against the reference's count;
- speech detection against the reference's speech (the union of its speakers): missed and false
  alarm, both as shares of the reference's speech time (pyannote's DetectionErrorRate);
- overlapped speech (two or more speakers at once) on a 10 ms grid: precision and recall.

`--long M` adds one meeting of M minutes made of the folder's recordings one after another
(real_corpus.concatenate: a speaker keeps one name throughout), to check the count and DER of a
long recording. `--env` passes settings to the stack (e.g. HARK_VOICE_SIMILARITY=0.85).
`--record` writes the tables to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from real_corpus import Recording, Turn, concatenate, read_folder, read_rttm  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "corpus" / "ami-excerpts"
STEP = 0.01
FAILED: list[str] = []  # jobs that did not end done, scored as finding no speech


def overlap_counts(rec: Recording, hyp: list[Turn]) -> tuple[int, int, int]:
    """Frames (10 ms, inside the UEM) where two or more speakers talk: in both, only in the
    hypothesis, only in the reference."""
    end = max([b for _, b in rec.scored] + [t[1] for t in rec.turns + hyp])
    frames = int(np.ceil(end / STEP)) + 1

    def count(turns: list[Turn]) -> np.ndarray:
        grid: dict[str, np.ndarray] = {}
        for a, b, who in turns:
            grid.setdefault(who, np.zeros(frames, dtype=bool))[int(round(a / STEP)) : int(round(b / STEP))] = True
        return np.sum(list(grid.values()), axis=0) if grid else np.zeros(frames, dtype=int)

    scored = np.zeros(frames, dtype=bool)
    for a, b in rec.scored:
        scored[int(round(a / STEP)) : int(round(b / STEP))] = True
    ref, out = (count(rec.turns) >= 2) & scored, (count(hyp) >= 2) & scored
    return int((ref & out).sum()), int((out & ~ref).sum()), int((ref & ~out).sum())


class Scores:
    """pyannote.metrics accumulators for one setting (count estimated, or given)."""

    def __init__(self) -> None:
        from pyannote.metrics.detection import DetectionErrorRate
        from pyannote.metrics.diarization import DiarizationErrorRate

        self.der = DiarizationErrorRate(collar=0.0, skip_overlap=False)
        self.der25 = DiarizationErrorRate(collar=0.5, skip_overlap=False)
        self.detection = DetectionErrorRate(collar=0.0)
        self.overlap = [0, 0, 0]
        self.count_exact = self.count_near = self.multi = 0

    def add(self, rec: Recording, hyp: list[Turn]) -> dict[str, float]:
        from pyannote.core import Annotation, Segment, Timeline

        def annotation(turns: list[Turn]) -> Annotation:
            out = Annotation(uri=rec.name)
            for i, (a, b, who) in enumerate(turns):
                out[Segment(a, b), i] = who
            return out

        ref, out = annotation(rec.turns), annotation(hyp)
        uem = Timeline([Segment(a, b) for a, b in rec.scored], uri=rec.name)
        parts = self.der(ref, out, uem=uem, detailed=True)
        total = max(parts["total"], 1e-9)
        detection = self.detection(ref, out, uem=uem, detailed=True)
        speech = max(detection["total"], 1e-9)
        for i, n in enumerate(overlap_counts(rec, hyp)):
            self.overlap[i] += n
        found = len({t[2] for t in hyp})
        if rec.speakers > 1:
            self.multi += 1
            self.count_exact += found == rec.speakers
            self.count_near += abs(found - rec.speakers) <= 1
        return {
            "found": found,
            "der": parts["diarization error rate"],
            "der25": self.der25(ref, out, uem=uem),
            "missed": parts["missed detection"] / total,
            "false_alarm": parts["false alarm"] / total,
            "confusion": parts["confusion"] / total,
            "speech_missed": detection["miss"] / speech,
            "speech_false_alarm": detection["false alarm"] / speech,
        }

    def total(self) -> dict[str, float]:
        parts, detection = self.der[:], self.detection[:]
        total, speech = max(parts["total"], 1e-9), max(detection["total"], 1e-9)
        both, extra, lost = self.overlap
        return {
            "der": abs(self.der),
            "der25": abs(self.der25),
            "missed": parts["missed detection"] / total,
            "false_alarm": parts["false alarm"] / total,
            "confusion": parts["confusion"] / total,
            "speech_missed": detection["miss"] / speech,
            "speech_false_alarm": detection["false alarm"] / speech,
            "overlap_precision": both / max(both + extra, 1),
            "overlap_recall": both / max(both + lost, 1),
        }


def run_jobs(recordings: list[Recording], env: dict[str, str]) -> dict[tuple[str, bool], list[Turn]]:
    """Every recording through one stack, count estimated and given; the RTTM turns of each."""
    from stages import follow, start_stack

    from hark.apikeys import create_key
    from hark.client import HarkClient
    from hark.db import session_scope
    from hark.settings import Settings
    from tests.conftest import isolated_settings

    with isolated_settings(Settings.from_env()) as cfg:
        procs, url = start_stack(cfg, 2, env)
        try:
            with session_scope(cfg.database_url) as s:
                key = create_key(s, "real-der")
            client = HarkClient(url, key, timeout=600)
            jobs: dict[tuple[str, bool], str] = {}
            for rec in recordings:
                for given in (False, True):
                    options: dict[str, Any] = {"num_speakers": rec.speakers} if given else {}
                    jobs[(rec.name, given)] = client.submit(str(rec.wav), options, force="true")["id"]
            out: dict[tuple[str, bool], list[Turn]] = {}
            for key_, job_id in jobs.items():
                final, _ = follow(client, job_id, 3600)
                if final["status"] != "done":
                    # Scored as no speech found (e.g. `no_speech`), and said so.
                    print(f"{key_[0]}: job ended {final['status']}: {final.get('error')}", file=sys.stderr)
                    FAILED.append(f"{key_[0]} ({(final.get('error') or {}).get('code', final['status'])})")
                    out[key_] = []
                    continue
                turns = read_rttm(client.transcript(job_id, "rttm").decode("utf-8"))
                out[key_] = [t for file_turns in turns.values() for t in file_turns]
            return out
        finally:
            procs.stop()


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def table(
    recordings: list[Recording], long: Recording | None, hyps: dict[tuple[str, bool], list[Turn]]
) -> tuple[list[str], list[str]]:
    """Per recording and in total over the folder's recordings; the long meeting (made of the
    same recordings) has a row of its own below the total."""
    rows = [
        "| recording | speakers | found | DER | DER ±0.25 s | missed | false alarm | confusion "
        "| speech missed | speech false alarm | found (given) | DER (given) | DER ±0.25 s (given) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    estimated, given = Scores(), Scores()

    def row(rec: Recording, e: dict[str, float], g: dict[str, float]) -> str:
        return (
            f"| {rec.name} | {rec.speakers} | {e['found']:.0f} | {pct(e['der'])} | {pct(e['der25'])} "
            f"| {pct(e['missed'])} | {pct(e['false_alarm'])} | {pct(e['confusion'])} | {pct(e['speech_missed'])} "
            f"| {pct(e['speech_false_alarm'])} | {g['found']:.0f} | {pct(g['der'])} | {pct(g['der25'])} |"
        )

    for rec in recordings:
        rows.append(row(rec, estimated.add(rec, hyps[(rec.name, False)]), given.add(rec, hyps[(rec.name, True)])))
    e, g = estimated.total(), given.total()
    rows.append(
        f"| **all** | | | **{pct(e['der'])}** | {pct(e['der25'])} | {pct(e['missed'])} | {pct(e['false_alarm'])} "
        f"| {pct(e['confusion'])} | **{pct(e['speech_missed'])}** | {pct(e['speech_false_alarm'])} | "
        f"| **{pct(g['der'])}** | {pct(g['der25'])} |"
    )
    if long is not None:
        rows.append(
            row(long, Scores().add(long, hyps[(long.name, False)]), Scores().add(long, hyps[(long.name, True)]))
        )
    summary = [
        f"- speakers found exactly on {estimated.count_exact} of {estimated.multi} recordings with 2+ "
        f"speakers, within ±1 on {estimated.count_near}",
        f"- overlapped speech (count estimated): precision {pct(e['overlap_precision'])}, "
        f"recall {pct(e['overlap_recall'])}",
    ]
    return rows, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--long", type=float, default=0, help="also one meeting this many minutes long")
    parser.add_argument("--env", nargs="*", default=[], help="settings for the stack, KEY=VALUE")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    recordings = read_folder(args.folder)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        long = None
        if args.long:
            long = concatenate(recordings, args.long, Path(tmp) / f"{args.folder.name}-{args.long:g}min.wav")
        hyps = run_jobs(recordings + ([long] if long else []), env)
    rows, summary = table(recordings, long, hyps)
    settings = ", ".join(f"{k}={v}" for k, v in env.items()) or "default settings"
    lines = [
        f"`python bench/real_der.py {args.folder.name}"
        + (f" --long {args.long:g}" if args.long else "")
        + (f" --env {' '.join(args.env)}" if args.env else "")
        + f"`: {len(recordings)} recordings through the API, {settings}; DER with overlap scored inside the UEM; "
        "the total is over the folder's recordings, the long meeting (the same recordings one after another) "
        "is scored on its own; "
        "speech missed and false alarm as shares of the reference's speech time.",
        "",
        *rows,
        "",
        *summary,
        f"- wall time of the run: {time.monotonic() - started:.0f} s",
        *([f"- jobs that failed, scored as finding no speech: {', '.join(FAILED)}"] if FAILED else []),
    ]
    from record import report

    title = f"Diarization on real recordings ({args.folder.name}" + (", " + settings if env else "") + ")"
    report(title, lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
