"""Request validation that needs no services: option parsing and object-key names."""
from __future__ import annotations

import pytest

from web.errors import ApiError
from web.jobs import parse_options, safe_filename


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

