"""Resemblyzer's speaker windows: one LSTM pass per window by default, or read off shared passes
(`speaker_pass_s`); either way every vector is what GE2E gives for the audio its pass heard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from hark.settings import Settings
from worker.engines.base import SegmentAudio
from worker.engines.speaker_resemblyzer import ResemblyzerSpeaker

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.wav"


@pytest.fixture(scope="module")
def segments() -> list[SegmentAudio]:
    pcm, rate = soundfile.read(str(SAMPLE), dtype="float32")
    spans = [(0.6, 5.55), (6.0, 6.3), (7.0, 7.8), (9.2, 12.95)]  # long, too short, one window, long
    return [
        SegmentAudio(segment_id=i, idx=i, start_s=a, end_s=b, samples=pcm[int(a * rate) : int(b * rate)])
        for i, (a, b) in enumerate(spans)
    ]


def engine(pass_s: float) -> ResemblyzerSpeaker:
    e = ResemblyzerSpeaker()
    e.load(Settings(speaker_window_s=1.0, speaker_hop_s=0.25, speaker_pass_s=pass_s))
    return e


def lstm_frames(e: ResemblyzerSpeaker, batch: list[SegmentAudio]) -> int:
    """Frames the LSTM ran over (batch rows × time steps) for one `run`."""
    seen: list[int] = []
    hook = e.encoder.lstm.register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape[0] * args[0].shape[1]))
    try:
        e.run(batch)
    finally:
        hook.remove()
    return sum(seen)


def test_windows_cover_each_segment_on_the_hop_grid():
    e = engine(0.0)
    assert e.windows(39) == []  # under 0.4 s: nothing to embed
    assert e.windows(80) == [(0, 80)]
    assert e.windows(160) == [(0, 100), (25, 125), (50, 150), (60, 160)]  # the last ends with the segment


def test_a_window_per_pass_is_ge2e_on_the_window(segments):
    e = engine(0.0)
    results = e.run(segments)
    assert [len(r.windows) for r in results] == [17, 0, 1, 13]
    for seg, result in zip(segments, results):
        mel = e._mel(seg.samples)
        for w in result.windows:
            a = int(round((w.start_s - seg.start_s) * 100))
            b = min(mel.shape[0], a + 100)
            with torch.inference_mode():
                expected = e.encoder(torch.from_numpy(mel[None, a:b])).numpy()[0]
            assert np.allclose(w.vector, expected, atol=1e-5)


def test_shared_passes_give_the_same_windows_for_less_lstm_work(segments):
    own, shared = engine(0.0), engine(1.0)
    per_window, per_pass = own.run(segments), shared.run(segments)
    assert [[(w.start_s, w.end_s) for w in r.windows] for r in per_pass] == [
        [(w.start_s, w.end_s) for w in r.windows] for r in per_window
    ]
    # Each vector is GE2E on everything its pass heard: from the last whole second before the
    # window starts (pass restarts at 0, 1, 2 … s of the segment) to the window's end.
    seg, result = segments[0], per_pass[0]
    mel = shared._mel(seg.samples)
    for w in result.windows:
        a = int(round((w.start_s - seg.start_s) * 100))
        first, end = (a // 100) * 100, min(mel.shape[0], a + 100)
        with torch.inference_mode():
            expected = shared.encoder(torch.from_numpy(mel[None, first:end])).numpy()[0]
        assert np.allclose(w.vector, expected, atol=1e-5)
    # The first window of each pass is the window alone; later ones have heard more.
    assert np.allclose(per_pass[0].windows[0].vector, per_window[0].windows[0].vector, atol=1e-5)
    assert not np.allclose(per_pass[0].windows[1].vector, per_window[0].windows[1].vector, atol=1e-3)
    assert lstm_frames(shared, segments) < 0.55 * lstm_frames(own, segments)


def test_a_pass_no_longer_than_a_hop_is_a_pass_per_window():
    assert engine(0.25).pass_frames == 0 and engine(0.0).pass_frames == 0
    assert engine(1.0).pass_frames == 100
