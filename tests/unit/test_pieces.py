"""Small pure parts: job state machine, batch planning, exports, utterance assembly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hark.exports import render
from hark.jobstate import FINAL, PREDECESSORS
from worker.assemble import SegmentView, Turn, build_utterances, speaker_stats
from worker.tasks.prepare import plan_batches


def test_state_machine_moves_forward_only():
    order = ["uploading", "queued", "preparing", "inferring", "reducing", "done"]
    for prev, nxt in zip(order, order[1:]):
        assert prev in PREDECESSORS[nxt]
    for final in FINAL:
        assert all(final not in preds for preds in PREDECESSORS.values())
    assert "done" not in PREDECESSORS["preparing"]


def test_batches_cover_every_segment_once():
    spans = [(i * 10.0, i * 10.0 + 7.0) for i in range(50)]
    batches = plan_batches(spans, 60.0)
    covered = [i for b in batches for i in range(b.first_idx, b.last_idx + 1)]
    assert covered == list(range(50))
    assert batches[0].speech_s >= 60.0 / 8 and batches[0].last_idx == 1  # small, to start early
    assert all(b.speech_s >= 60.0 for b in batches[1:-1])
    assert all(b.speech_s < 70.0 for b in batches)


@pytest.mark.parametrize("batch_s, clip_s", [(120.0, 30.0), (60.0, 0.0), (10.0, 30.0)])
def test_batches_planned_on_a_prefix_are_the_whole_plans_batches(batch_s, clip_s):
    """Prepare sends every batch but the last planned over the segments final so far; the plan
    over all segments must begin with exactly those, however the recording goes on."""
    rng = np.random.default_rng(5)
    t, spans = 0.0, []
    for _ in range(400):
        t += float(rng.uniform(0.1, 3.0))
        length = float(rng.choice([0.3, 2.0, 9.0, 16.0, 29.0]))
        spans.append((round(t, 3), round(t + length, 3)))
        t += length
    whole = plan_batches(spans, batch_s, clip_s)
    for n in range(1, len(spans)):
        sent = plan_batches(spans[:n], batch_s, clip_s)[:-1]
        assert sent == whole[: len(sent)]


def doc():
    return {
        "recording": "meeting one",
        "utterances": [
            {"start": 0.5, "end": 2.25, "speaker": "SPEAKER_00", "text": "Hello there."},
            {"start": 3661.0, "end": 3662.5, "speaker": "SPEAKER_01", "text": "Hi."},
        ],
    }


def test_exports():
    srt = render(doc(), "srt")
    assert "1\n00:00:00,500 --> 00:00:02,250\n[SPEAKER_00] Hello there." in srt
    assert "01:01:01,000 --> 01:01:02,500" in srt
    assert render(doc(), "vtt").startswith("WEBVTT\n\n00:00:00.500 --> 00:00:02.250\n<v SPEAKER_00>Hello there.")
    assert render(doc(), "txt").splitlines()[1] == "[01:01:01] SPEAKER_01: Hi."
    assert render(doc(), "rttm").splitlines()[0] == "SPEAKER meeting_one 1 0.500 1.750 <NA> <NA> SPEAKER_00 <NA> <NA>"
    assert json.loads(render(doc(), "json")) == doc()
    with pytest.raises(ValueError):
        render(doc(), "docx")


def test_speaker_stats_join_consecutive_turns():
    turns = [Turn(0.2, 2.0, "SPEAKER_00"), Turn(2.0, 4.1, "SPEAKER_01"), Turn(10.0, 11.0, "SPEAKER_00")]
    stats = speaker_stats(turns)
    assert stats["SPEAKER_00"] == {"speech_s": 2.8, "turns": 2}
    assert stats["SPEAKER_01"] == {"speech_s": 2.1, "turns": 1}
    # Overlapped speech adds seconds, not turns.
    with_overlap = speaker_stats(turns, [Turn(1.8, 2.0, "SPEAKER_01"), Turn(2.0, 2.2, "SPEAKER_00")])
    assert with_overlap["SPEAKER_00"] == {"speech_s": 3.0, "turns": 2}
    assert with_overlap["SPEAKER_01"] == {"speech_s": 2.3, "turns": 1}


def test_words_split_at_speaker_changes():
    turns = [Turn(0.0, 2.0, "SPEAKER_00"), Turn(2.0, 4.0, "SPEAKER_01")]
    words = [
        {"start": 0.1, "end": 0.5, "word": " Good"},
        {"start": 0.6, "end": 1.2, "word": " morning."},
        {"start": 2.1, "end": 2.6, "word": " Hi"},
        {"start": 2.7, "end": 3.9, "word": " there."},
    ]
    utts = build_utterances([SegmentView(0, 0.0, 4.0, "Good morning. Hi there.", words)], turns)
    assert [(u.speaker, u.text) for u in utts] == [("SPEAKER_00", "Good morning."), ("SPEAKER_01", "Hi there.")]
    assert utts[0].start_s == 0.0 and utts[-1].end_s == 4.0


def test_segment_without_words_takes_majority_speaker():
    turns = [Turn(0.0, 0.5, "SPEAKER_00"), Turn(0.5, 2.0, "SPEAKER_01"), Turn(2.0, 3.0, "SPEAKER_00")]
    utts = build_utterances([SegmentView(3, 0.2, 2.4, "", [])], turns)
    assert len(utts) == 1 and utts[0].speaker == "SPEAKER_01"


def test_rttm_prefers_turns():
    document = {**doc(), "turns": [{"start": 0.0, "end": 1.5, "speaker": "SPEAKER_00"}]}
    assert render(document, "rttm") == "SPEAKER meeting_one 1 0.000 1.500 <NA> <NA> SPEAKER_00 <NA> <NA>\n"


def test_subtitle_cues_are_readable():
    """A long utterance with word timings is cut at word boundaries into cues of at most two lines
    of 42 characters and 7 seconds, each labelled with its speaker; the limits can be changed."""
    from hark.exports import CueLimits, cues

    text = [
        "so",
        "the",
        "budget",
        "for",
        "next",
        "year",
        "is",
        "about",
        "twelve",
        "percent",
        "higher",
        "than",
        "this",
        "year",
        "and",
        "most",
        "of",
        "that",
        "goes",
        "to",
        "the",
        "new",
        "hall",
        "which",
        "we",
        "still",
        "have",
        "to",
        "approve",
        "before",
        "the",
        "end",
        "of",
        "the",
        "month",
    ]
    words = [{"start": 10 + 0.4 * i, "end": 10 + 0.4 * i + 0.3, "word": " " + w, "p": 0.9} for i, w in enumerate(text)]
    long = {
        "utterances": [{"start": 10.0, "end": words[-1]["end"], "speaker": "SPEAKER_01", "text": "", "words": words}]
    }
    found = cues(long)
    assert len(found) > 2
    assert " ".join(" ".join(c.lines) for c in found).split() == text  # nothing lost, order kept
    for c in found:
        assert 1 <= len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines)
        assert c.end - c.start <= 7.0 and c.speaker == "SPEAKER_01"
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))
    narrow = cues(long, CueLimits(max_line_chars=20, max_lines=1, max_cue_s=3))
    assert all(len(c.lines) == 1 and len(c.lines[0]) <= 20 and c.end - c.start <= 3 for c in narrow)
    srt = render(long, "srt")
    assert srt.startswith("1\n00:00:10,000 --> ") and "[SPEAKER_01] so the budget" in srt
    text_lines = [line for line in srt.splitlines() if line and "-->" not in line and not line.isdigit()]
    assert max(len(line) for line in text_lines) <= 42  # the speaker label counts against the first line
    vtt = render(long, "vtt", CueLimits(max_lines=1))
    assert vtt.count("<v SPEAKER_01>") == vtt.count(" --> ")
    with pytest.raises(ValueError, match="max_lines"):
        CueLimits(max_lines=0)


@pytest.mark.parametrize(
    ("options", "holds"),
    [
        ({}, True),
        ({"language": "de"}, False),
        ({"language": "multi"}, False),
        ({"engines": {"asr": "whisper-tiny-en"}}, False),
    ],
)
def test_asr_waits_for_the_speech_the_language_is_detected_from(options, holds):
    """With `language: auto`, prepare sends a batch's ASR only once the rows hold the first
    DETECT_S seconds of speech (the first ASR batch detects from them), the other kinds at once;
    the held tasks go first when they do, or with the last send."""
    import uuid

    from hark.settings import Settings
    from worker.language import DETECT_S
    from worker.tasks.prepare import Batch, FanOut

    fan = FanOut(Settings(), uuid.uuid4(), uuid.uuid4(), options, 0, None)  # type: ignore[arg-type]
    assert "asr" in fan.kinds and len(fan.kinds) > 1
    every = lambda n: [(n, k) for k in fan.kinds]  # noqa: E731
    # ASR, and any kind reading its text (the default emotion engine does), wait together.
    waiting = [(0, k) for k in fan.kinds if k in fan.after_language]
    assert ("asr" in fan.after_language) == holds

    fan.spans, fan.batches = [(0.0, DETECT_S / 3)], [Batch(0, 0, DETECT_S / 3)]
    assert fan.release(0) == [t for t in every(0) if t not in waiting]
    fan.spans, fan.batches = fan.spans + [(20.0, 20.0 + DETECT_S)], fan.batches + [Batch(1, 1, DETECT_S)]
    assert fan.release(1) == [*waiting, *every(1)]
    assert fan.release(2) == [] and fan.held == []

    fan = FanOut(Settings(), uuid.uuid4(), uuid.uuid4(), options, 0, None)  # type: ignore[arg-type]
    fan.spans, fan.batches = [(0.0, 5.0)], [Batch(0, 0, 5.0)]
    fan.release(0)
    assert fan.release(1, last=True) == waiting  # a recording with 5 s of speech: the last send
