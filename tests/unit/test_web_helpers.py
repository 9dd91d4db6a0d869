"""Request validation that needs no services: option parsing and object-key names."""
from __future__ import annotations

import numpy as np
import pytest

from web.errors import ApiError
from web.jobs import parse_options, safe_filename
from worker.assemble import SegmentView, WindowLabels, speaker_turns


def test_options_are_validated():
    assert parse_options({"num_speakers": "3", "language": "en"}) == {"num_speakers": 3, "language": "en"}
    assert parse_options({"min_speakers": 2, "max_speakers": 5, "engines": {"asr": "whisper-tiny-en"}}) == {
        "min_speakers": 2, "max_speakers": 5, "engines": {"asr": "whisper-tiny-en"},
    }
    for bad in ({"num_speakers": "many"}, {"num_speakers": 0}, {"min_speakers": 5, "max_speakers": 2},
                {"language": "English"}, {"colour": "blue"}, {"engines": {"translate": "x"}}):
        with pytest.raises(ApiError) as err:
            parse_options(bad)
        assert err.value.status == 400 and err.value.code == "invalid_options"


def test_filenames_are_made_safe_for_keys():
    assert safe_filename("Board meeting (final).m4a") == "Board_meeting_final_.m4a"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\\\calls\\\\a.wav") == "a.wav"
    assert safe_filename(None) == "upload"
    assert safe_filename("...") == "upload"
    assert len(safe_filename("x" * 500 + ".wav")) == 200


def test_turns_without_any_speaker_windows():
    empty = WindowLabels(np.zeros(0), np.zeros(0), np.zeros(0, dtype=int))
    turns = speaker_turns([SegmentView(0, 1.0, 1.2, "", []), SegmentView(1, 2.0, 2.3, "", [])], empty)
    assert [(t.start_s, t.end_s, t.speaker) for t in turns] == [(1.0, 1.2, "SPEAKER_00"), (2.0, 2.3, "SPEAKER_00")]
