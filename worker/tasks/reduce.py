"""reduce(job): diarize the speaker windows, label segments, assemble and export the transcript, finish.

Segments the prosody engine measured get their arousal against their speaker's baseline, the
heated flag and their emotion label here, once the speakers are known (worker/affect.py).

Everything it writes is replaced on a re-run (speaker rows, segment labels, export objects), so a
duplicate reduce is harmless; only the first one to finish moves the job to done. The clustering
may already have been done by diarize(job), sent when the job's last speaker-embedding batch was
stored (worker/diarization_file.py); reduce then reads its outcome.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from hark.db import session_scope
from hark.exports import FORMATS, render, with_people
from hark.jobstate import advance
from hark.models import Embedding, Job, Segment, Speaker, SpeakerTurn
from hark.queues import DIARIZE, REDUCE
from hark.status import JobStatus
from hark.storage import Storage, diarization_key, out_key, vad_key
from worker import diarization_file
from worker.affect import PROSODY_SOURCE, Affect, SegmentMeasures, assess
from worker.assemble import SegmentView, Utterance, build_utterances, speaker_stats
from worker.celery_app import app
from worker.channels import ChannelLayout, by_channel
from worker.clustering import ClusterOptions
from worker.engines.vad_silero import FRAME_S
from worker.resegment import Diarization, SpeechProbabilities, diarize
from worker.tasks.common import JobStageTask, settings
from worker.timing import Clock
from worker.voices import enroll_reference, match_speakers, names, people, store_matches
from worker.window_rows import load_windows

log = logging.getLogger("hark.reduce")


def cluster_options(options: dict) -> ClusterOptions:
    return ClusterOptions(
        num_speakers=options.get("num_speakers"),
        min_speakers=options.get("min_speakers") or 1,
        max_speakers=options.get("max_speakers") or 20,
        voice_similarity=settings().voice_similarity,
    )


def _load_windows(s: Session, jid: uuid.UUID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The job's speaker windows as arrays (worker/window_rows.py)."""
    count = s.scalar(select(func.count()).select_from(Embedding).where(Embedding.job_id == jid)) or 0
    return load_windows(s, jid, count)


def _speech(storage: Storage, jid: uuid.UUID) -> SpeechProbabilities | None:
    """The VAD's frame probabilities prepare stored; None for a job prepared before it stored
    them (turns then span the VAD segments)."""
    if not storage.exists(vad_key(jid)):
        log.warning("no VAD probabilities stored; turns follow the segments", extra={"job_id": str(jid)})
        return None
    return SpeechProbabilities.from_bytes(storage.get_bytes(vad_key(jid)), FRAME_S, settings().vad_threshold)


class _Clustering:
    """One job's clustering inputs, read the same way by diarize and by reduce, and the
    fingerprint under which diarize saves its outcome and reduce looks for it."""

    def __init__(
        self,
        storage: Storage,
        jid: uuid.UUID,
        spans: list[tuple[float, float]],
        starts: np.ndarray,
        ends: np.ndarray,
        vectors: np.ndarray,
        options: dict,
    ) -> None:
        self.storage, self.jid = storage, jid
        self.args = (spans, starts, ends, vectors, cluster_options(options), _speech(storage, jid))
        self.key = diarization_file.fingerprint(*self.args)

    def saved(self) -> Diarization | None:
        if not self.storage.exists(diarization_key(self.jid)):
            return None
        found = diarization_file.load(self.storage.get_bytes(diarization_key(self.jid)), self.key)
        if found is None:
            log.info("saved diarization is for other inputs; clustering again", extra={"job_id": str(self.jid)})
        return found

    def run(self) -> Diarization:
        return diarize(*self.args)


def _saved_or_diarize(
    storage: Storage,
    jid: uuid.UUID,
    spans: list[tuple[float, float]],
    starts: np.ndarray,
    ends: np.ndarray,
    vectors: np.ndarray,
    options: dict,
) -> Diarization:
    """What diarize(job) saved for exactly these inputs, else the clustering done here."""
    clustering = _Clustering(storage, jid, spans, starts, ends, vectors, options)
    return clustering.saved() or clustering.run()


def _affects(segs: Sequence[Segment], seg_speaker: dict[int, str]) -> dict[int, Affect]:
    """Arousal, heated flag and label of the segments the prosody engine measured, by index
    (worker/affect.py); an acoustic engine's segments keep their own emotion."""
    measured = [g for g in segs if g.emotion_source == PROSODY_SOURCE]
    found = assess([SegmentMeasures(seg_speaker.get(g.idx), g.prosody, g.valence) for g in measured])
    return {g.idx: a for g, a in zip(measured, found, strict=True)}


@app.task(name=DIARIZE, ignore_result=True)
def diarize_early(job_id: str) -> None:
    """Cluster a job's speakers while its last ASR batches still run, and save the outcome for
    reduce. Best effort: on any failure reduce clusters itself, so nothing here fails the job."""
    cfg = settings()
    jid = uuid.UUID(job_id)
    clock = Clock()
    started, started_cpu = time.monotonic(), time.process_time()
    try:
        with session_scope(cfg.database_url) as s:
            job = s.get(Job, jid)
            if job is None or job.status not in (JobStatus.INFERRING, JobStatus.REDUCING):
                return
            options = dict(job.options or {})
            if ChannelLayout.from_options(options) is not None:
                return  # one speaker per channel: reduce clusters nothing
            spans = [
                (a, b)
                for a, b in s.execute(
                    select(Segment.start_s, Segment.end_s).where(Segment.job_id == jid).order_by(Segment.idx)
                )
            ]
            starts, ends, vectors = _load_windows(s, jid)
        storage = Storage(cfg)
        clustering = _Clustering(storage, jid, spans, starts, ends, vectors, options)
        if clustering.saved() is not None:  # a redelivered diarize: the outcome is already there
            return
        with clock.part("clustering", cpu=True):
            found = clustering.run()
        storage.put_bytes(diarization_key(jid), diarization_file.dump(found, clustering.key))
        with session_scope(cfg.database_url) as s:
            job = s.get(Job, jid, with_for_update=True)
            if job is not None:
                clock.add("diarize", time.monotonic() - started, time.process_time() - started_cpu)
                job.timings = clock.merged(job.timings)
    except Exception:  # reduce does the clustering itself
        log.exception("early diarization failed; reduce will cluster", extra={"job_id": job_id})


@app.task(name=REDUCE, bind=True, base=JobStageTask, failure_code="reduce_error")
def reduce(self: JobStageTask, job_id: str) -> None:
    cfg = settings()
    jid = uuid.UUID(job_id)
    clock = Clock()
    started, started_cpu = time.monotonic(), time.process_time()
    with clock.part("reduce_db"), session_scope(cfg.database_url) as s:
        job = s.get(Job, jid)
        if job is None or job.status != JobStatus.REDUCING or not self.take_lease(s, jid, "reduce"):
            return
        options, filename, duration = dict(job.options or {}), job.filename, job.duration_s
        damaged_s, damaged_ranges = job.damaged_s or 0.0, job.damaged_ranges or []
        tenant_id = job.tenant_id
        segs = s.execute(select(Segment).where(Segment.job_id == jid).order_by(Segment.idx)).scalars().all()
        starts, ends, vectors = _load_windows(s, jid)
        views = [
            SegmentView(g.idx, g.start_s, g.end_s, g.text or "", g.words or [], g.emotion, g.emotion_source, g.language)
            for g in segs
        ]

    self.keep_lease(jid, "reduce")
    storage = Storage(cfg)
    layout = ChannelLayout.from_options(options)
    if layout is not None:  # one speaker per channel: no clustering
        with clock.part("assemble", cpu=True):
            views, found, utterances = by_channel(layout, views, _speech(storage, jid), starts, vectors)
    else:
        with clock.part("clustering", cpu=True):
            found = _saved_or_diarize(
                storage, jid, [(v.start_s, v.end_s) for v in views], starts, ends, vectors, options
            )
        with clock.part("assemble", cpu=True):
            utterances = build_utterances(views, found.turns)
    turns, centroids = found.turns, found.centroids
    with clock.part("assemble", cpu=True):
        stats = speaker_stats(turns, found.overlaps)
    # The RTTM and the document list every speaker heard, overlapped speech included; words
    # follow the single-speaker turns.
    all_turns = sorted(turns + found.overlaps, key=lambda t: (t.start_s, t.end_s))

    # A segment's speaker is the one holding most of its time, summed over its utterances.
    talk: dict[int, dict[str, float]] = {}
    for u in utterances:
        per = talk.setdefault(u.segment_idx, {})
        per[u.speaker] = per.get(u.speaker, 0.0) + u.end_s - u.start_s
    seg_speaker = {idx: max(per, key=per.__getitem__) for idx, per in talk.items()}
    with clock.part("affect", cpu=True):
        affects = _affects(segs, seg_speaker)
    for u in utterances:
        if u.segment_idx in affects:
            u.emotion = affects[u.segment_idx].emotion
    valence = {g.idx: g.valence for g in segs}
    # Who the speakers are, from the tenant's enrolled voices (manual corrections of an earlier
    # run of this job included).
    with clock.part("voices"), session_scope(cfg.database_url) as s:
        if options.get("enroll"):
            speech = {k: float(v["speech_s"]) for k, v in stats.items()}
            enroll_reference(s, tenant_id, jid, str(options["enroll"]), speech, centroids)
        matches = match_speakers(
            s, tenant_id, jid, {k: v for k, v in centroids.items() if k in stats}, cfg.voice_threshold
        )
        person_names = names(s, {m.voice_id for m in matches.values()})

    doc = {
        "job_id": job_id,
        "recording": PurePosixPath(filename).stem,
        "duration_s": duration,
        # Stretches that could not be decoded (a damaged file) and are silence in the audio.
        "damaged_s": damaged_s,
        "damaged_ranges": damaged_ranges,
        # Languages heard, most speech first (one per recording unless the job asked for "multi").
        "languages": _languages(utterances),
        "speakers": [{"label": k, **stats[k]} for k in sorted(stats)],
        "turns": [{"start": t.start_s, "end": t.end_s, "speaker": t.speaker} for t in all_turns],
        "utterances": [
            {
                "start": u.start_s,
                "end": u.end_s,
                "speaker": u.speaker,
                "text": u.text,
                "language": u.language,
                "emotion": u.emotion,
                "emotion_source": u.emotion_source,
                "valence": valence.get(u.segment_idx),
                "arousal": affects[u.segment_idx].arousal if u.segment_idx in affects else None,
                "heated": affects[u.segment_idx].heated if u.segment_idx in affects else None,
                "words": u.words,
            }
            for u in utterances
        ],
    }
    with_people(doc, people(matches, person_names))
    with clock.part("export"):
        for fmt, content_type in FORMATS.items():
            storage.put_bytes(out_key(jid, fmt), render(doc, fmt).encode("utf-8"), content_type)
    clock.add("reduce_s3_write", storage.write_s)

    db_started = time.monotonic()
    with session_scope(cfg.database_url) as s:
        job = s.get(Job, jid, with_for_update=True)
        if job is None or job.status == JobStatus.CANCELLED:
            # Deleted (or being deleted) while this ran: DELETE /v1/jobs removed out/ before the
            # exports above were written, and nobody would ever remove them.
            storage.delete_prefix(f"out/{jid}/")
            return
        if job.status != JobStatus.REDUCING:
            return
        # One statement for all segments: a 3 h recording has about 900, and one UPDATE each cost
        # half a second at the very end of the job.
        if layout is not None:  # the segments' times in their channel, not on prepare's timeline
            s.execute(
                text(
                    "UPDATE segments SET start_s = v.start_s, end_s = v.end_s, words = v.words "
                    "FROM unnest(CAST(:idx AS integer[]), CAST(:start AS float8[]), CAST(:end AS float8[]), "
                    "CAST(:words AS jsonb[])) AS v(idx, start_s, end_s, words) "
                    "WHERE segments.job_id = :job AND segments.idx = v.idx"
                ),
                {
                    "job": jid,
                    "idx": [v.idx for v in views],
                    "start": [v.start_s for v in views],
                    "end": [v.end_s for v in views],
                    "words": [json.dumps(v.words) if v.words else None for v in views],
                },
            )
        s.execute(
            text(
                "UPDATE segments SET speaker = v.speaker "
                "FROM unnest(CAST(:idx AS integer[]), CAST(:speaker AS text[])) AS v(idx, speaker) "
                "WHERE segments.job_id = :job AND segments.idx = v.idx"
            ),
            {"job": jid, "idx": list(seg_speaker), "speaker": list(seg_speaker.values())},
        )
        if affects:
            s.execute(
                text(
                    "UPDATE segments SET emotion = v.emotion, arousal = v.arousal, heated = v.heated, "
                    "prosody = segments.prosody || jsonb_build_object('loudness_db', v.loudness_db) "
                    "FROM unnest(CAST(:idx AS integer[]), CAST(:emotion AS text[]), CAST(:arousal AS real[]), "
                    "CAST(:heated AS boolean[]), CAST(:loudness AS real[])) "
                    "AS v(idx, emotion, arousal, heated, loudness_db) "
                    "WHERE segments.job_id = :job AND segments.idx = v.idx"
                ),
                {
                    "job": jid,
                    "idx": list(affects),
                    "emotion": [a.emotion for a in affects.values()],
                    "arousal": [a.arousal for a in affects.values()],
                    "heated": [a.heated for a in affects.values()],
                    "loudness": [a.loudness_db for a in affects.values()],
                },
            )
        s.execute(delete(Speaker).where(Speaker.job_id == jid))
        s.add_all(
            Speaker(
                job_id=jid,
                tenant_id=tenant_id,
                label=name,
                speech_s=entry["speech_s"],
                turns=int(entry["turns"]),
                centroid=[float(x) for x in centroids[name]] if name in centroids else None,
            )
            for name, entry in stats.items()
        )
        s.flush()
        store_matches(s, jid, matches)
        s.execute(delete(SpeakerTurn).where(SpeakerTurn.job_id == jid))
        marked = [(t, False) for t in turns] + [(t, True) for t in found.overlaps]
        s.execute(
            text(
                "INSERT INTO speaker_turns (job_id, tenant_id, speaker, start_s, end_s, overlap) "
                "SELECT :job, :tenant, v.speaker, v.start_s, v.end_s, v.overlap FROM unnest("
                "CAST(:speaker AS text[]), CAST(:start AS float8[]), CAST(:end AS float8[]), "
                "CAST(:overlap AS boolean[])"
                ") AS v(speaker, start_s, end_s, overlap)"
            ),
            {
                "job": jid,
                "tenant": tenant_id,
                "speaker": [t.speaker for t, _ in marked],
                "start": [t.start_s for t, _ in marked],
                "end": [t.end_s for t, _ in marked],
                "overlap": [o for _, o in marked],
            },
        )
        # Everything but this transaction's commit is in the timings.
        clock.add("reduce_db", time.monotonic() - db_started)
        clock.add("reduce", time.monotonic() - started, time.process_time() - started_cpu)
        advance(s, jid, JobStatus.DONE, finished_at=func.now(), timings=clock.merged(job.timings))
    log.info("job done", extra={"job_id": job_id, "stage": "reduce", "seconds": round(time.monotonic() - started, 3)})


def _languages(utterances: Sequence[Utterance]) -> list[str]:
    """The utterances' languages, the one with the most speech first."""
    seconds: dict[str, float] = {}
    for u in utterances:
        if u.language:
            seconds[u.language] = seconds.get(u.language, 0.0) + u.end_s - u.start_s
    return sorted(seconds, key=lambda k: -seconds[k])
