"""Resegmentation: turns follow the evidence and ignore blips, cover the VAD segments (or, with the
VAD's frame probabilities, the speech in them), and overlap is marked where speakers change with no
pause."""

from __future__ import annotations

import numpy as np

from worker.clustering import ClusterOptions
from worker.resegment import (
    OVERLAP_S,
    SPEECH_ONSET_PAD_S,
    SpeechProbabilities,
    Turn,
    _overlaps_at_changes,
    _viterbi,
    diarize,
    separation,
    smooth_within_segments,
    speech_spans,
)

VAD_FRAME_S = 0.032


def vad(duration_s: float, speech: list[tuple[float, float]]) -> SpeechProbabilities:
    """Frame probabilities: 0.9 inside the given stretches, 0.05 elsewhere."""
    times = (np.arange(int(duration_s / VAD_FRAME_S)) + 0.5) * VAD_FRAME_S
    probs = np.full(times.size, 0.05, dtype=np.float32)
    for a, b in speech:
        probs[(times >= a) & (times < b)] = 0.9
    return SpeechProbabilities(probs, VAD_FRAME_S)


def two_voices(who_of, seconds: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    voices = rng.normal(size=(2, 32))
    starts = np.arange(0, seconds - 1.0, 0.25)
    who = np.array([who_of(s + 0.5) for s in starts])
    vectors = voices[who] + 0.3 * rng.normal(size=(starts.size, 32))
    return starts, starts + 1.0, vectors.astype(np.float32)


def test_viterbi_ignores_a_blip_but_follows_a_real_change():
    a, b = np.array([0.3, 0.0]), np.array([0.0, 0.3])
    blip = np.stack([a] * 10 + [b] + [a] * 10)
    assert set(_viterbi(blip)) == {0}
    change = np.stack([a] * 10 + [b] * 10)
    assert list(_viterbi(change)) == [0] * 10 + [1] * 10


def test_turns_cover_segments_and_change_speaker_inside_one():
    rng = np.random.default_rng(0)
    voices = rng.normal(size=(2, 32))
    starts = np.arange(0, 19.0, 0.25)
    ends = starts + 1.0
    who = (starts + 0.5 >= 10).astype(int)  # speaker 1 from 10 s on
    vectors = voices[who] + 0.3 * rng.normal(size=(starts.size, 32))
    segments = [(0.0, 12.0), (14.0, 20.0)]
    found = diarize(segments, starts, ends, vectors.astype(np.float32))
    turns = [(t.start_s, t.end_s, t.speaker) for t in found.turns]
    assert turns[0][0] == 0.0 and turns[-1][1] == 20.0
    assert sum(e - s for s, e, _ in turns) == sum(e - s for s, e in segments)
    assert [t[2] for t in turns] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01"]
    assert abs(turns[0][1] - 10.0) <= 0.5
    assert set(found.centroids) == {"SPEAKER_00", "SPEAKER_01"}
    assert found.labels.shape == starts.shape


def test_fixed_count_and_no_windows():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    starts = np.arange(40) * 0.25
    found = diarize([(0.0, 11.0)], starts, starts + 1.0, vectors, ClusterOptions(num_speakers=1))
    assert {t.speaker for t in found.turns} == {"SPEAKER_00"}
    empty = diarize([(1.0, 1.2), (2.0, 2.3)], np.zeros(0), np.zeros(0), np.zeros((0, 16), dtype=np.float32))
    assert [(t.start_s, t.end_s, t.speaker) for t in empty.turns] == [
        (1.0, 1.2, "SPEAKER_00"),
        (2.0, 2.3, "SPEAKER_00"),
    ]


def test_smoothing_stays_inside_segments():
    x = np.eye(4, dtype=np.float32)
    smoothed = smooth_within_segments(x, np.array([0, 0, 1, 1]), radius=1)
    assert smoothed[1, 2] == 0 and smoothed[2, 1] == 0  # never across a segment boundary
    assert smoothed[0, 1] > 0 and smoothed[3, 2] > 0


def test_separation_of_two_groups():
    rng = np.random.default_rng(2)
    apart = np.concatenate([rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + np.eye(8)[0] * 5])
    halves = np.arange(400) < 200
    assert separation(apart, halves, ~halves) > 4
    same = rng.normal(size=(400, 8))
    assert separation(same, halves, ~halves) < 0.5


def test_speech_spans_follow_the_vad_frames():
    speech = vad(10.0, [(1.0, 3.0), (3.05, 4.0), (6.0, 8.0)])
    spans = speech_spans(speech, 0.5, 9.0)
    # The 0.05 s dip is no pause; onsets move earlier by the pad, offsets stay; silence is cut.
    assert len(spans) == 2
    (a0, b0), (a1, b1) = spans
    assert abs(a0 - (1.0 - SPEECH_ONSET_PAD_S)) <= VAD_FRAME_S and abs(b0 - 4.0) <= VAD_FRAME_S
    assert abs(a1 - (6.0 - SPEECH_ONSET_PAD_S)) <= VAD_FRAME_S and abs(b1 - 8.0) <= VAD_FRAME_S
    assert speech_spans(vad(10.0, []), 2.0, 3.0) == [(2.0, 3.0)]  # nothing heard: keep the segment


def test_probabilities_survive_storage_as_bytes():
    speech = vad(5.0, [(1.0, 2.0)])
    back = SpeechProbabilities.from_bytes(speech.to_bytes(), VAD_FRAME_S)
    assert len(speech.to_bytes()) == speech.probs.size
    assert np.abs(back.probs - speech.probs).max() <= 1 / 255


def test_turns_leave_out_silence_and_change_speaker_in_the_pause():
    # Speaker 0 talks 0–6.5 s (with a 0.3 s breath at 3 s), silence 6.5–7.5 s, speaker 1 after:
    # one VAD segment holds it all, as a padded, merged segment does.
    starts, ends, vectors = two_voices(lambda t: int(t >= 7.0), 14.0)
    speech = vad(14.0, [(0.5, 3.0), (3.3, 6.5), (7.5, 13.5)])
    found = diarize([(0.3, 13.8)], starts, ends, vectors, speech=speech)
    turns = [(t.start_s, t.end_s, t.speaker) for t in found.turns]
    assert [t[2] for t in turns] == ["SPEAKER_00", "SPEAKER_01"]
    assert abs(turns[0][0] - 0.45) <= 0.05 and abs(turns[0][1] - 6.5) <= 0.05  # breath kept, pad gone
    assert abs(turns[1][0] - 7.45) <= 0.05 and abs(turns[1][1] - 13.5) <= 0.05
    assert found.overlaps == []  # the change fell in a pause: nobody talked over anybody


def test_a_change_without_pause_is_marked_as_overlap():
    starts, ends, vectors = two_voices(lambda t: int(t >= 6.0), 12.0, seed=3)
    found = diarize([(0.0, 12.0)], starts, ends, vectors, speech=vad(12.0, [(0.0, 12.0)]))
    assert [t.speaker for t in found.turns] == ["SPEAKER_00", "SPEAKER_01"]
    change = found.turns[0].end_s
    assert abs(change - 6.0) <= 0.5
    assert [(t.start_s, t.end_s, t.speaker) for t in found.overlaps] == [
        (round(change - OVERLAP_S, 3), change, "SPEAKER_01"),
        (change, round(change + OVERLAP_S, 3), "SPEAKER_00"),
    ]


def test_overlap_needs_two_real_turns_back_to_back():
    turns = [Turn(0.0, 2.0, "A"), Turn(2.0, 2.3, "B"), Turn(2.3, 5.0, "A"), Turn(5.5, 8.0, "B")]
    # A 0.3 s "turn" is more likely a confusion than a voice; a change after a pause is no overlap.
    assert _overlaps_at_changes(turns, 0.15) == []
    assert _overlaps_at_changes([Turn(0.0, 2.0, "A"), Turn(2.0, 4.0, "B")], 0.15) == [
        Turn(1.85, 2.0, "B"),
        Turn(2.0, 2.15, "A"),
    ]
