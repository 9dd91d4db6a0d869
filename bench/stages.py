"""Where the time goes: one recording through Hark end to end, stage by stage.

    python bench/stages.py [RECORDING] [--minutes 10 --speakers 4] [--model-concurrency 1]
                           [--set HARK_X=Y ...] [--peer] [--rounds N] [--record]

Starts a stack of its own (a database, bucket and broker prefix that nothing else uses, removed
afterwards; the services of `infra/services.sh`): the web app under gunicorn, a CPU worker
(prepare, reduce) and a model worker (asr, embed, emotion), each its own processes as deployed.
A short warm-up job (the sample) runs first, so what is measured is a warm deployment. Then the
recording (a generated meeting unless one is given, bench/synth.py) is uploaded through the API
and followed to `done`.

Printed (and with --record written into BENCHMARKS.md): per stage wall and CPU seconds and RTF
(seconds per second of audio), from the timings each task stores in `jobs.timings` (decode, VAD,
ASR, embedding, emotion, clustering, database, S3); the queue overhead from `job_tasks` (time
between a task being sent and started, and time with no model task running while the job was in
its model stage); end-to-end wall from the start of the upload to `done`; each process's peak RSS
and CPU seconds, and the CPU seconds of the S3, database and broker servers beside them; and the
pipeline overhead: (end-to-end wall − model compute) / wall, where model compute is the wall
seconds VAD, ASR, embedding and emotion models ran.

With --peer, faster-whisper's own batched pipeline (bench/peer_asr.py: same Whisper model, its
VAD, ASR only) then runs on the same file in this process, right after Hark, and the ratio of
the two times is printed (issue 8's goal: Hark end to end at most 1.0× the peer's time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

if TYPE_CHECKING:
    from peer_asr import PeerRun

CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE = ROOT / "examples" / "sample.wav"


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name: [1] ppid, [11] utime, [12] stime,
    [13] cutime, [14] cstime (clock ticks)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


# The servers the stack talks to (infra/services.sh), by process name: their CPU is the cost of
# the S3, database and broker traffic, on the same cores as Hark's own processes.
SERVICES = {"weed": "S3 server (SeaweedFS)", "postgres": "PostgreSQL", "redis-server": "Redis"}


def services_cpu() -> dict[str, float]:
    """CPU seconds each service has used so far: its root processes' own and their reaped
    children's (cutime, cstime; a database backend that ended), plus their live descendants'."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                names[int(d.name)] = (d / "comm").read_text().strip()
                parents[int(d.name)] = int(_stat(int(d.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    totals: dict[str, float] = {label: 0.0 for label in SERVICES.values()}
    for pid, name in names.items():
        if name not in SERVICES:
            continue
        try:
            f = _stat(pid)
        except OSError:
            continue
        ticks = int(f[11]) + int(f[12])
        if names.get(parents.get(pid, 0)) != name:  # a root: add what its ended children used
            ticks += int(f[13]) + int(f[14])
        totals[SERVICES[name]] += ticks / CLK_TCK
    return totals


@dataclass
class Proc:
    role: str
    pid: int
    peak_mib: float = 0.0
    cpu_start: float | None = None
    cpu_end: float = 0.0


@dataclass
class Sampler:
    """Follows every process of the stack (main processes and their pool children): peak resident
    memory (the kernel's high-water mark, VmHWM) and CPU seconds over the measured job."""

    roots: dict[str, int]
    procs: dict[int, Proc] = field(default_factory=dict)
    measuring: bool = False
    stop: threading.Event = field(default_factory=threading.Event)

    def scan(self) -> None:
        for role, root in self.roots.items():
            for pid, kind in [(root, "main"), *[(c, "pool") for c in children(root)]]:
                try:
                    status, cpu = _status(pid), cpu_seconds(pid)
                except OSError:
                    continue
                p = self.procs.setdefault(pid, Proc(f"{role} {kind}", pid))
                p.peak_mib = max(p.peak_mib, int(status.get("VmHWM", "0 kB").split()[0]) / 1024)
                if self.measuring and p.cpu_start is None:
                    p.cpu_start = cpu
                p.cpu_end = cpu

    def start_measuring(self) -> None:
        """CPU from now on (peaks are the processes' whole lives: the warm-up job is smaller)."""
        self.measuring = True
        for p in self.procs.values():
            p.cpu_start = None
        self.scan()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.scan()


def start_stack(cfg, concurrency: int, extra_env: dict[str, str], code: Path = ROOT, split: bool = False):
    """Web and workers in their own processes, running the code of the checkout `code` (logs in
    artifacts/bench-*.log). `split` gives ASR a model worker of its own (`concurrency` processes)
    and speaker embedding with emotion another (one process), as separate pools of machines would."""
    from tests.conftest import ARTIFACTS, Processes, celery_cmd, settings_env, start_web

    class InCheckout(Processes):
        def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
            ARTIFACTS.mkdir(exist_ok=True)
            log = ARTIFACTS / f"{name}.log"
            proc = subprocess.Popen(
                cmd, cwd=code, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
            )
            self.procs.append((name, proc, log))
            return proc

    env = {**settings_env(cfg), **extra_env}
    procs = InCheckout()
    procs.start("bench-worker-cpu", celery_cmd("bench-cpu", "cpu"), env)
    # (log name, Celery node name, queues, pool processes)
    models = (
        [("bench-worker-model", "bench-model", "asr,embed,emotion", concurrency)]
        if not split
        else [
            ("bench-worker-model", "bench-model", "asr", concurrency),
            ("bench-worker-model-embed", "bench-model-embed", "embed,emotion", 1),
        ]
    )
    for name, node, queues, processes in models:
        procs.start(name, celery_cmd(node, queues, processes), env)
    url = start_web(procs, "bench-web", env)
    for name in ("bench-worker-cpu", *(m[0] for m in models)):
        procs.wait_for_log(name, "ready.", timeout=300)
    return procs, url


def follow(client, job_id: str, timeout_s: float) -> tuple[dict, float]:
    """Poll like the client does (every 0.5 s; the job's own finish time is what is reported);
    returns the final job and when (time.time()) it was first seen final."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["status"] in ("done", "failed", "cancelled"):
            return job, time.time()
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} not finished after {timeout_s:.0f} s")


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def job_rows(cfg, job_id: str):
    from sqlalchemy import select

    from hark.db import session_scope
    from hark.models import Job, JobTask

    with session_scope(cfg.database_url) as s:
        job = s.get(Job, uuid.UUID(job_id))
        tasks = s.execute(select(JobTask).where(JobTask.job_id == job.id)).scalars().all()
        s.expunge_all()
    return job, tasks


def report_lines(
    job, tasks, upload_start: float, seen_done: float, sampler: Sampler, concurrency: int
) -> tuple[list[str], float]:
    t = job.timings or {}
    audio = job.duration_s or 0.0
    ts = datetime.timestamp

    def get(key: str) -> float:
        return float(t.get(key, 0.0))

    kinds = ("asr", "embed", "emotion")
    rows = [
        ("decode (S3 read excluded)", get("decode_s"), get("decode_cpu_s")),
        ("VAD (silero)", get("vad_s"), get("vad_cpu_s")),
        ("ASR model", get("asr_model_s"), get("asr_model_cpu_s")),
        ("speaker embedding model", get("embed_model_s"), get("embed_model_cpu_s")),
        ("emotion model", get("emotion_model_s"), get("emotion_model_cpu_s")),
        ("clustering (diarize)", get("clustering_s"), get("clustering_cpu_s")),
        ("assemble utterances", get("assemble_s"), get("assemble_cpu_s")),
        ("database (all tasks)", sum(get(f"{k}_db_s") for k in ("prepare", *kinds, "reduce")), None),
        (
            "S3 reads and writes (all tasks)",
            get("prepare_s3_read_s")
            + get("prepare_s3_write_s")
            + sum(get(f"{k}_fetch_s") for k in kinds)
            + get("reduce_s3_write_s"),
            None,
        ),
        ("model loading in tasks", sum(get(f"{k}_load_s") for k in kinds), None),
        (
            "language (`auto`: detection, or reading what was detected)",
            get("asr_language_s"),
            get("asr_language_cpu_s"),
        ),
    ]
    # Queue overhead: a task is ready when it is sent (prepare's commit; for text emotion, chained
    # behind its batch's ASR, when that ASR finished) and starts when a worker takes it.
    asr_done = {x.batch_idx: x.done_at for x in tasks if x.kind == "asr"}
    waits = []
    for x in tasks:
        ready = asr_done.get(x.batch_idx) if x.kind == "emotion" and x.batch_idx in asr_done else x.enqueued_at
        waits.append(ts(x.started_at) - ts(ready))
    first_sent = min(ts(x.enqueued_at) for x in tasks)
    last_done = max(ts(x.done_at) for x in tasks)
    busy = union_length([(ts(x.started_at), ts(x.done_at)) for x in tasks])
    idle = (last_done - first_sent) - busy
    created, started, finished = ts(job.created_at), ts(job.started_at), ts(job.finished_at)
    reduce_start = finished - get("reduce_s")
    prepare_end = started + get("prepare_s")
    e2e = finished - upload_start
    # Model compute on the job's timeline: the time the VAD (at the end of prepare's decoding) or
    # some model task was running, less the part of the tasks' time not spent in their models.
    # With one model process and no overlap this is the plain sum of the model runs; parallel
    # runs, and tasks running while prepare still decodes, are not counted twice.
    task_wall = sum(ts(x.done_at) - ts(x.started_at) for x in tasks)
    model_share = min(1.0, sum(get(f"{k}_model_s") for k in kinds) / task_wall) if task_wall > 0 else 0.0
    vad_span = (prepare_end - get("vad_s"), prepare_end)
    covered = union_length([vad_span, *[(ts(x.started_at), ts(x.done_at)) for x in tasks]])
    model = covered - busy * (1.0 - model_share)
    overhead = (e2e - model) / e2e
    lines = [
        f"- recording: {audio / 60:.1f} min, {job.segments_total} VAD segments, "
        f"{len({x.batch_idx for x in tasks})} batches × {len({x.kind for x in tasks})} kinds = {len(tasks)} "
        "model tasks; "
        f"model worker: {concurrency} pool process(es)",
        f"- end to end, upload start → done: **{e2e:.1f} s (RTF {e2e / audio:.4f})**; the client saw `done` "
        f"{seen_done - finished:.2f} s after it (0.5 s polling)",
        f"- pipeline overhead (end-to-end wall − model compute) / wall: **{100 * overhead:.1f} %** (goal ≤ 15 %); "
        f"model compute {model:.1f} s (the time VAD or a model task ran, less the tasks' time outside ASR, "
        "embedding and "
        f"emotion models: {100 * (1 - model_share):.0f} %); clustering alone is "
        f"{100 * get('clustering_s') / e2e:.1f} % of the wall",
        "",
        "| stage | wall s | CPU s | RTF (wall) |",
        "|---|---|---|---|",
        *[
            f"| {name} | {wall:.2f} | {'' if cpu is None else f'{cpu:.2f}'} | {wall / audio:.4f} |"
            for name, wall, cpu in rows
        ],
        *[
            f"| task total: {k} | {get(f'{k}_s'):.2f} | {get(f'{k}_cpu_s'):.2f} | {get(f'{k}_s') / audio:.4f} |"
            for k in ("prepare", *kinds, "diarize", "reduce")
        ],
        "",
        "Database and S3 by task (wall s): "
        + ", ".join(
            f"{k} {get(f'{k}_db_s'):.2f} / "
            f"{get(f'{k}_fetch_s') if k in kinds else get(f'{k}_s3_read_s') + get(f'{k}_s3_write_s'):.2f}"
            for k in ("prepare", *kinds, "reduce")
        ),
        "",
        "Timeline (s after the upload started):",
        f"upload {created - upload_start:.2f} → prepare started {started - upload_start:.2f} (queue "
        f"{started - created:.2f}) "
        f"→ prepare done {prepare_end - upload_start:.2f} → first model task started "
        f"{min(ts(x.started_at) for x in tasks) - upload_start:.2f} → last model task done "
        f"{last_done - upload_start:.2f} "
        f"→ reduce started {reduce_start - upload_start:.2f} (queue {max(0.0, reduce_start - last_done):.2f}) → "
        f"done {e2e:.2f}",
        "",
        f"- queue overhead: model tasks waited {sum(waits):.2f} s in all between sent and started (mean "
        f"{sum(waits) / len(waits):.2f} s, max {max(waits):.2f} s; this includes waiting behind other tasks of "
        "the job); "
        f"during the model stage, {idle:.2f} s of {last_done - first_sent:.2f} s had no model task running",
        "",
        "| process | peak RSS | CPU s during the job |",
        "|---|---|---|",
        *[
            f"| {p.role} (pid {p.pid}) | {p.peak_mib:.0f} MiB | {p.cpu_end - (p.cpu_start or 0.0):.1f} |"
            for p in sorted(sampler.procs.values(), key=lambda p: p.role)
        ],
    ]
    return lines, e2e


def print_tasks(tasks, upload_start: float) -> None:
    """Each model task's sent, started and done times (s after the upload started), in start order:
    where the schedule leaves a core idle or puts a long task last."""
    ts = datetime.timestamp
    print("kind     batch  segments   sent  start   done    run")
    for x in sorted(tasks, key=lambda x: x.started_at):
        a, b = ts(x.started_at) - upload_start, ts(x.done_at) - upload_start
        print(
            f"{x.kind:8} {x.batch_idx:5}  {x.first_idx:4}-{x.last_idx:<4} {ts(x.enqueued_at) - upload_start:6.2f} "
            f"{a:6.2f} {b:6.2f} {b - a:6.2f}"
        )


def run_job(
    recording: Path,
    concurrency: int,
    extra_env: dict[str, str],
    code: Path = ROOT,
    split: bool = False,
    options: dict | None = None,
) -> tuple[list[str], float, float, str]:
    """One warm stack of its own, the recording through it; returns the report lines, the
    end-to-end wall seconds, the CPU seconds of all the stack's processes during the job, and the
    transcript's text (utterances in time order)."""
    from hark.apikeys import create_key
    from hark.client import HarkClient
    from hark.db import session_scope
    from hark.settings import Settings
    from tests.conftest import isolated_settings

    with isolated_settings(Settings.from_env()) as cfg:
        procs, url = start_stack(cfg, concurrency, extra_env, code, split)
        sampler = Sampler({p[0].removeprefix("bench-"): p[1].pid for p in procs.procs})
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        try:
            with session_scope(cfg.database_url) as s:
                key = create_key(s, "bench")
            client = HarkClient(url, key, timeout=600)
            warm = client.submit(str(SAMPLE), force="true")
            follow(client, warm["id"], 600)
            sampler.start_measuring()
            services_before = services_cpu()
            upload_start = time.time()
            job = client.submit(str(recording), options, force="true")
            final, seen = follow(client, job["id"], 7200)
            sampler.scan()
            services = {k: v - services_before.get(k, 0.0) for k, v in services_cpu().items()}
            if final["status"] != "done":
                raise RuntimeError(f"job ended {final['status']}: {final.get('error')}")
            job_row, tasks = job_rows(cfg, job["id"])
            doc = json.loads(client.transcript(job["id"], "json"))
            text = " ".join(u["text"] for u in sorted(doc["utterances"], key=lambda u: u["start"]))
        finally:
            sampler.stop.set()
            thread.join()
            procs.stop()
    lines, e2e = report_lines(job_row, tasks, upload_start, seen, sampler, concurrency)
    if os.environ.get("HARK_BENCH_TASKS"):
        print_tasks(tasks, upload_start)
    cpu = sum(p.cpu_end - (p.cpu_start or 0.0) for p in sampler.procs.values())
    settings_note = ", ".join(f"{k}={v}" for k, v in extra_env.items()) or "default settings"
    models = (
        f"model worker ({concurrency} pool process{'es' if concurrency > 1 else ''})"
        if not split
        else f"ASR worker ({concurrency} pool process{'es' if concurrency > 1 else ''}), "
        "embedding and emotion worker (1)"
    )
    lines.insert(0, f"- stack: gunicorn web (2 processes), CPU worker (1 process), {models}; {settings_note}")
    lines.append(f"- CPU seconds of all Hark processes during the job: {cpu:.1f}")
    lines.append(
        "- CPU seconds of the services during the job (they share the cores): "
        + ", ".join(f"{k} {v:.1f}" for k, v in services.items())
    )
    return lines, e2e, cpu, text


def summary_lines(
    rounds: list[tuple[list[tuple[int, float, float]], PeerRun | None]], baseline: tuple[float, float] | None
) -> list[str]:
    """Worker scaling and the side-by-side ratio, round by round. This VM's CPU speed drifts by
    up to a quarter from minute to minute, so a ratio is taken within a round (runs minutes
    apart), and with several rounds their median is given too."""
    lines: list[str] = []
    many = len(rounds) > 1
    speedups: dict[int, list[float]] = {}
    ratios: dict[int, list[float]] = {}
    for n, (runs, _) in enumerate(rounds, start=1):
        if len(runs) > 1 and runs[0][0] == 1:
            lines += ["#### Worker scaling", ""] if n == 1 else []
            for c, e2e, _ in runs[1:]:
                speedups.setdefault(c, []).append(runs[0][1] / e2e)
                lines.append(
                    f"- model worker × {c} against × 1{f' (round {n})' if many else ''}: **{runs[0][1] / e2e:.2f}× "
                    f"faster** end to end ({e2e:.1f} s against {runs[0][1]:.1f} s; goal ≥ 1.8× where cores allow)"
                )
    for n, (runs, peer) in enumerate(rounds, start=1):
        if peer is None:
            continue
        tag = f" (round {n})" if many else ""
        peer_s, duration, count, peer_cpu = peer.seconds, peer.duration, peer.segments, peer.cpu
        if n == 1:
            lines += ["", "#### Side by side" if len(runs) > 1 or many else "Side by side:", ""]
        lines.append(
            f"- right after{tag}, on the same file: faster-whisper `BatchedInferencePipeline` (tiny.en int8, batch 8, "
            f"its VAD, ASR only, default threads): {peer_s:.1f} s wall (RTF {peer_s / duration:.3f}), "
            f"{peer_cpu:.1f} s CPU, {count} segments"
        )
        for c, e2e, cpu in runs:
            ratios.setdefault(c, []).append(e2e / peer_s)
            lines.append(
                f"- Hark end to end{tag}, model worker × {c}: {e2e:.1f} s wall, {cpu:.1f} s CPU; "
                f"**ratio Hark / peer {e2e / peer_s:.2f} wall** (goal ≤ 1.0), {cpu / peer_cpu:.2f} CPU"
            )
        if baseline is not None and n == 1:
            lines.append(
                f"- baseline: {baseline[0]:.1f} s wall, {baseline[1]:.1f} s CPU; ratio Hark / peer "
                f"{baseline[0] / peer_s:.2f} wall, {baseline[1] / peer_cpu:.2f} CPU"
            )
    if many:
        lines += [
            "",
            *[
                f"- median over {len(v)} rounds: model worker × {c} against × 1 **{statistics.median(v):.2f}×** "
                f"(each: {', '.join(f'{x:.2f}' for x in v)})"
                for c, v in speedups.items()
            ],
            *[
                f"- median over {len(v)} rounds: ratio Hark (model worker × {c}) / peer **{statistics.median(v):.2f}** "
                f"(each: {', '.join(f'{x:.2f}' for x in v)})"
                for c, v in ratios.items()
            ],
        ]
    return lines


def against_lines(
    options: dict, other: dict, against: list[tuple[float, float]], measured: list[tuple[float, float]]
) -> list[str]:
    """The measured job's end-to-end wall and CPU against the same job with other options, as
    medians over rounds (each pair run minutes apart, the other options first)."""

    def med(runs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(r[i] for r in runs)

    wall, cpu = med(measured, 0) / med(against, 0) - 1, med(measured, 1) / med(against, 1) - 1
    each = "; ".join(f"{a[0]:.1f}/{m[0]:.1f} s wall, {a[1]:.1f}/{m[1]:.1f} s CPU" for a, m in zip(against, measured))
    return [
        "",
        f"- options {json.dumps(options)} against {json.dumps(other)}, median over {len(against)} rounds: "
        f"**{wall:+.1%} wall end to end, {cpu:+.1%} CPU** ({med(measured, 0):.1f} against "
        f"{med(against, 0):.1f} s wall, {med(measured, 1):.1f} against {med(against, 1):.1f} s CPU; "
        f"each round, other/measured: {each})",
    ]


def quality_lines(recording: Path, hark_text: str, peer: PeerRun | None) -> list[str]:
    """Word error rate of Hark's transcript (the last run's) and of the peer's against a generated
    meeting's text: the same model, so what differs is how each cuts and decodes the audio. With
    overlapping turns the reference order is only approximate, for both alike."""
    from asr_quality import edit_distance, reference_words, words_of

    ref = reference_words(recording)
    if not ref:
        return []
    wer = [f"Hark {100 * edit_distance(ref, words_of(hark_text)) / len(ref):.1f} %"]
    if peer is not None:
        wer.append(f"peer {100 * edit_distance(ref, words_of(peer.text)) / len(ref):.1f} %")
    return ["", f"- word error rate against the generated meeting's text ({len(ref)} words): " + ", ".join(wer)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", nargs="?", type=Path, help="default: a generated meeting")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model-concurrency",
        type=int,
        nargs="+",
        default=[1],
        help="pool processes of the model worker; several values run one after another",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="HARK_X=Y", help="a setting for the stack's processes"
    )
    parser.add_argument(
        "--peer", action="store_true", help="then run faster-whisper's batched pipeline on the same file"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="first run the same job on another checkout's code (e.g. a worktree of main), "
        "model worker with 1 process, and report its end-to-end time beside these",
    )
    parser.add_argument(
        "--split-pools",
        action="store_true",
        help="ASR in a model worker of its own, embedding and emotion in another (baseline too)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the model-concurrency list (and the peer) this many times; ratios per round and their median",
    )
    parser.add_argument(
        "--options",
        type=json.loads,
        default={},
        metavar="JSON",
        help='job options of the measured job, e.g. \'{"language": "en"}\'',
    )
    parser.add_argument(
        "--against",
        type=json.loads,
        metavar="JSON",
        help="each round, also run the job with these options first (model worker with the first concurrency) "
        "and compare the medians: what an option costs, measured minutes apart on the same code",
    )
    parser.add_argument("--title", default="", help="added to the section title")
    parser.add_argument("--record", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.set)

    from record import report

    from tests.conftest import _load_service_env

    _load_service_env()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        recording = args.recording
        if recording is None:
            from synth import synth_meeting

            recording = Path(folder) / "meeting.wav"
            synth_meeting(recording, args.speakers, args.minutes, seed=args.seed)
        baseline: tuple[float, float] | None = None
        if args.baseline:
            _, e2e, cpu, _ = run_job(recording, 1, extra_env, args.baseline.resolve(), args.split_pools)
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=args.baseline, capture_output=True, text=True
            ).stdout.strip()
            baseline = (e2e, cpu)
            lines += [
                f"- baseline, the same job on commit {commit} ({'ASR' if args.split_pools else 'model'} worker "
                "with 1 process): "
                f"{e2e:.1f} s end to end, {cpu:.1f} s CPU",
                "",
            ]
        rounds: list[tuple[list[tuple[int, float, float]], PeerRun | None]] = []
        against: list[tuple[float, float]] = []
        for round_no in range(args.rounds):
            runs: list[tuple[int, float, float]] = []
            if args.against is not None:
                _, e2e, cpu, _ = run_job(
                    recording, args.model_concurrency[0], extra_env, split=args.split_pools, options=args.against
                )
                against.append((e2e, cpu))
            for concurrency in args.model_concurrency:
                run_lines, e2e, cpu, text = run_job(
                    recording, concurrency, extra_env, split=args.split_pools, options=args.options
                )
                if round_no == 0:  # the stage tables once; later rounds only add their totals
                    if len(args.model_concurrency) > 1:
                        lines += [
                            f"#### Model worker with {concurrency} pool process{'es' if concurrency > 1 else ''}",
                            "",
                        ]
                    lines += [*run_lines, ""]
                runs.append((concurrency, e2e, cpu))
            peer = None
            if args.peer:
                from peer_asr import peer_run

                peer = peer_run(recording, batch_size=8, threads=0)
            rounds.append((runs, peer))
        lines += summary_lines(rounds, baseline)
        if against:
            lines += against_lines(args.options, args.against, against, [r[0][0][1:] for r in rounds])
        lines += quality_lines(recording, text, rounds[-1][1])
    title = "Stages of one job end to end" + (f" ({args.title})" if args.title else "")
    report(title, lines, args.record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
