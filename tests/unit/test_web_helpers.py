"""Request validation that needs no services: option parsing and object-key names."""

from __future__ import annotations

import pytest

from web.errors import ApiError
from web.jobs import parse_options, safe_filename


def test_options_are_validated():
    assert parse_options({"num_speakers": "3", "language": "en"}) == {"num_speakers": 3, "language": "en"}
    assert parse_options({"min_speakers": 2, "max_speakers": 5, "engines": {"asr": "whisper-tiny-en"}}) == {
        "min_speakers": 2,
        "max_speakers": 5,
        "engines": {"asr": "whisper-tiny-en"},
    }
    for bad in (
        {"num_speakers": "many"},
        {"num_speakers": 0},
        {"min_speakers": 5, "max_speakers": 2},
        {"language": "English"},
        {"colour": "blue"},
        {"engines": {"translate": "x"}},
        {"engines": {"asr": "no-such-engine"}},  # refused at the API, not failed in a worker
    ):
        with pytest.raises(ApiError) as err:
            parse_options(bad)
        assert err.value.status == 400 and err.value.code == "invalid_options"


def test_engine_names_are_checked_at_the_api():
    """A typo or an engine of another kind is a 400 naming the choices, before any upload is read."""
    assert parse_options({"engines": {"emotion": "none", "asr": "sensevoice-small"}})["engines"] == {
        "emotion": "none",
        "asr": "sensevoice-small",
    }
    for engines, says in (
        ({"asr": "whisper-tiny"}, "engines.asr: 'whisper-tiny' is an unknown engine; choose one of "),
        ({"asr": "resemblyzer"}, "engines.asr: 'resemblyzer' is an embed engine, not asr"),
    ):
        with pytest.raises(ApiError) as err:
            parse_options({"engines": engines})
        assert err.value.status == 400 and err.value.code == "invalid_options"
        assert says in err.value.message and "whisper-tiny-en" in err.value.message


def test_filenames_are_made_safe_for_keys():
    assert safe_filename("Board meeting (final).m4a") == "Board_meeting_final_.m4a"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\\\calls\\\\a.wav") == "a.wav"
    assert safe_filename(None) == "upload"
    assert safe_filename("...") == "upload"
    assert len(safe_filename("x" * 500 + ".wav")) == 200


def test_key_cache_remembers_live_keys_for_its_ttl_only(monkeypatch):
    import uuid

    import web.auth
    from hark.apikeys import Principal

    now = [100.0]
    monkeypatch.setattr(web.auth.time, "monotonic", lambda: now[0])
    who = Principal(uuid.uuid4(), uuid.uuid4(), "read")
    cache = web.auth.KeyCache(1.0, size=2)
    assert cache.get("hark_secret") is None
    cache.put("hark_secret", who)
    assert cache.get("hark_secret") == who and cache.get("hark_other") is None
    assert "hark_secret" not in repr(cache._entries)  # held by hash only
    now[0] += 1.5
    assert cache.get("hark_secret") is None  # a revoked key stops working within the TTL
    for n in range(5):  # bounded
        cache.put(f"hark_{n}", who)
        assert len(cache._entries) <= 2
    off = web.auth.KeyCache(0.0)
    off.put("hark_secret", who)
    assert off.get("hark_secret") is None
