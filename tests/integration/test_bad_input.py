"""Hostile recordings through the real web and worker: the decode limits are enforced where the
decoding happens, and each file ends as a failed job with its own reason code, fast, leaving no
half-written canonical audio behind."""
from __future__ import annotations

import pytest

from hark.storage import Storage, pcm_key
from tests.audiofiles import encode, tone, wav_bytes

pytestmark = pytest.mark.integration


def truncated_ogg(tmp_path):  # type: ignore[no-untyped-def]
    whole = encode((tone(10.0) / 32768).astype("float32"), 16000, tmp_path / "whole.ogg", "ogg").read_bytes()
    return whole[: len(whole) * 2 // 3]


CASES = {
    "claims-100h.wav": (lambda tmp: wav_bytes(tone(1.0, 8000), rate=8000, bits=8, declared_data=100 * 3600 * 8000),
                        "truncated_audio"),
    "mid-sample.wav": (lambda tmp: wav_bytes(tone(4.0))[:-1], "truncated_audio"),
    "cut.ogg": (truncated_ogg, "truncated_audio"),
    "zero.wav": (lambda tmp: wav_bytes(tone(0.0)), "no_audio"),
    "sixty.wav": (lambda tmp: wav_bytes(tone(1.0, channels=60), channels=60), "too_many_channels"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file_fails_with_its_code(client, settings, tmp_path, name):
    make, code = CASES[name]
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    final = client.wait(client.submit(str(path))["id"], timeout_s=120)
    assert final["status"] == "failed", final
    assert final["error"]["code"] == code and final["error"]["message"]
    assert not Storage(settings).exists(pcm_key(final["id"]))
