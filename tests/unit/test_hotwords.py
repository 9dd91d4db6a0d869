"""Hotwords and prompt reach Whisper: invented names in generated speech that tiny.en gets wrong on
its own and right when primed with them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from worker.engines.base import SegmentAudio

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = "The Kestrova project meets with Dr. Fennimax on Tuesday."
NAMES = ["Kestrova", "Fennimax"]


@pytest.fixture(scope="module")
def recording() -> list[SegmentAudio]:
    sys.path.insert(0, str(ROOT / "bench"))
    from synth import speak

    audio = speak(("en-us", 50, 150), SENTENCE)
    return [SegmentAudio(1, 0, 0.0, len(audio) / 16000, audio)]


@pytest.fixture(scope="module")
def tiny():
    from hark.settings import Settings
    from worker.engines.asr_whisper import WhisperAsr

    engine = WhisperAsr()
    engine.load(Settings.from_env(torch_threads=1))
    return engine


def test_hotwords_and_prompt_fix_invented_names(tiny, recording) -> None:
    plain = tiny.run_with_options(recording, {})[0].text
    assert not any(name in plain for name in NAMES), plain
    primed = tiny.run_with_options(recording, {"hotwords": NAMES})[0].text
    assert all(name in primed for name in NAMES), primed
    prompted = tiny.run_with_options(recording, {"prompt": "Meeting with Kestrova and Fennimax."})[0].text
    assert all(name in prompted for name in NAMES), prompted
