"""Segment cutting from speech probabilities, and silero-vad on the real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hark.audio import decode_stream
from worker.engines.vad_silero import (
    FRAME_S,
    SileroVad,
    VadOptions,
    final_from_probabilities,
    segments_from_probabilities,
)

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.wav"


def probs_for(spans: list[tuple[float, float]], duration: float) -> np.ndarray:
    t = np.arange(int(duration / FRAME_S)) * FRAME_S
    p = np.full(t.size, 0.05, dtype=np.float32)
    for a, b in spans:
        p[(t >= a) & (t < b)] = 0.95
    return p


def test_hysteresis_finds_spans_and_bridges_short_pauses():
    probs = probs_for([(1.0, 3.0), (3.2, 4.0), (6.0, 7.0), (9.0, 9.1)], 10.0)
    segs = segments_from_probabilities(probs, 10.0, VadOptions(pad_s=0.0))
    assert len(segs) == 2  # the 0.2 s pause is bridged; the 0.1 s blip is dropped
    assert abs(segs[0][0] - 1.0) < 0.05 and abs(segs[0][1] - 4.0) < 0.05
    assert abs(segs[1][0] - 6.0) < 0.05 and abs(segs[1][1] - 7.0) < 0.05


def test_long_segments_are_split_at_the_quietest_frame():
    probs = probs_for([(0.0, 100.0)], 100.0)
    t = np.arange(probs.size) * FRAME_S
    probs[(t > 25.0) & (t < 25.1)] = 0.4  # a dip, not a pause: still inside speech
    segs = segments_from_probabilities(probs, 100.0, VadOptions(pad_s=0.0, max_segment_s=30.0))
    assert all(b - a <= 30.0 + 1e-6 for a, b in segs)
    assert abs(segs[0][1] - 25.0) < 0.1
    assert segs[0][0] == 0.0 and abs(segs[-1][1] - 100.0) < 0.05
    assert all(abs(segs[i][1] - segs[i + 1][0]) < 1e-6 for i in range(len(segs) - 1))


@pytest.mark.slow
def test_silero_streaming_matches_speech_in_the_sample():
    vad = SileroVad()
    stream = vad.stream()
    for block in decode_stream(str(SAMPLE), block_samples=7000):  # odd block size: frames straddle blocks
        stream.feed(block)
    segs = stream.segments()
    # Reference RTTM: speech from 6.69 s to 30.0 s.
    assert abs(segs[0][0] - 6.69) < 0.3
    assert segs[-1][1] > 29.0
    speech = sum(b - a for a, b in segs)
    assert 20.0 < speech <= 23.5


def test_long_segments_are_split_at_the_lowest_energy_point():
    # Speech throughout (probability flat), but the signal is quiet around 21 s: the cut goes there.
    probs = probs_for([(0.0, 40.0)], 40.0)
    t = np.arange(probs.size) * FRAME_S
    energy = np.full(probs.size, -1.0, dtype=np.float32)
    energy[(t > 20.9) & (t < 21.2)] = -4.0
    segs = segments_from_probabilities(probs, 40.0, VadOptions(pad_s=0.0, max_segment_s=30.0), energy)
    assert len(segs) == 2
    assert segs[0][1] == pytest.approx(21.05, abs=0.15)


def test_short_segments_are_merged_up_to_merge_length():
    spans = [(1.0, 3.0), (4.0, 6.0), (7.0, 9.0), (10.0, 12.0), (30.0, 31.0)]
    probs = probs_for(spans, 40.0)
    plain = segments_from_probabilities(probs, 40.0, VadOptions(pad_s=0.0))
    assert len(plain) == 5
    merged = segments_from_probabilities(probs, 40.0, VadOptions(pad_s=0.0, merge_length_s=8.5))
    # 1-9 s fits in 8.5 s; 10-12 s would make it 11 s, so it starts a new one; 30 s is far away.
    assert [(round(a), round(b)) for a, b in merged] == [(1, 9), (10, 12), (30, 31)]
    assert all(b - a <= 8.5 + 1e-6 for a, b in merged)


def test_merging_never_exceeds_the_maximum_segment():
    spans = [(i * 2.0, i * 2.0 + 1.5) for i in range(30)]
    merged = segments_from_probabilities(
        probs_for(spans, 60.0), 60.0, VadOptions(pad_s=0.0, max_segment_s=10.0, merge_length_s=50.0)
    )
    assert all(b - a <= 10.0 + 1e-6 for a, b in merged) and len(merged) >= 6


def _random_meeting(rng: np.random.Generator, minutes: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and energies of turns and pauses of every length, with dips inside speech
    (the cases hysteresis, padding, splitting and merging each decide)."""
    probs, t = [], 0.0
    while t < minutes * 60:
        speech = rng.choice([0.1, 0.5, 2.0, 8.0, 45.0]) * rng.uniform(0.5, 1.5)
        pause = rng.choice([0.05, 0.2, 0.45, 0.7, 3.0]) * rng.uniform(0.5, 1.5)
        p = rng.uniform(0.55, 1.0, int(speech / FRAME_S))
        p[rng.random(p.size) < 0.05] = rng.uniform(0.1, 0.3)  # dips inside speech
        probs += [p, rng.uniform(0.0, 0.18, int(pause / FRAME_S))]
        t += speech + pause
    out = np.concatenate(probs).astype(np.float32)
    return out, rng.normal(-2.0, 1.0, out.size).astype(np.float32)


@pytest.mark.parametrize(
    "options",
    [VadOptions(), VadOptions(merge_length_s=15.0), VadOptions(merge_length_s=4.0, max_segment_s=6.0, pad_s=0.3)],
)
def test_final_segments_are_a_prefix_of_the_whole_segmentation(options):
    """Prepare sends model work for the segments final_from_probabilities calls final while it still
    decodes; the whole recording's segmentation must begin with exactly them, wherever decoding
    stood, or that work was for segments that do not exist."""
    rng = np.random.default_rng(3)
    for _ in range(4):
        probs, energy = _random_meeting(rng, 6.0)
        whole = segments_from_probabilities(probs, probs.size * FRAME_S, options, energy)
        grown = 0
        for n in range(0, probs.size + 1, 97):
            final = final_from_probabilities(probs[:n], options, energy[:n])
            assert final == whole[: len(final)]
            assert len(final) >= grown  # what was final stays final
            grown = len(final)
        assert grown > 0.5 * len(whole)  # and most of it is known long before the end


@pytest.mark.slow
def test_silero_stream_publishes_final_segments_as_it_goes():
    """The real sample twice with two seconds of silence between: the first copy's segments
    become final during the silence, the second's last one only at the end."""
    sample = np.concatenate(list(decode_stream(str(SAMPLE))))
    audio = np.concatenate([sample, np.zeros(32000, dtype=sample.dtype), sample])
    stream = SileroVad().stream()
    seen = []
    for i in range(0, audio.size, 7000):
        stream.feed(audio[i : i + 7000])
        seen.append(stream.final_segments(VadOptions(merge_length_s=4.0)))
    whole = stream.segments(VadOptions(merge_length_s=4.0))
    assert all(final == whole[: len(final)] for final in seen)
    first_copy = [span for span in whole if span[1] <= sample.size / 16000 + 0.5]
    assert seen[-1][: len(first_copy)] == first_copy and len(seen[-1]) < len(whole)
