"""Hostile and broken recordings: each is refused quickly with its own reason code, or decoded
correctly; none may read gigabytes, exhaust memory or run without a time limit."""

from __future__ import annotations

import io

import numpy as np
import pytest

from hark.audio import AudioError, DecodeLimits, DecodeReport, decode_stream
from tests.audiofiles import encode, tone, wav_bytes


def decode(blob: bytes, limits: DecodeLimits = DecodeLimits()) -> tuple[np.ndarray, DecodeReport]:
    report = DecodeReport()
    blocks = list(decode_stream(io.BytesIO(blob), report, limits=limits))
    return np.concatenate(blocks), report


def code_of(blob: bytes, limits: DecodeLimits = DecodeLimits()) -> str:
    with pytest.raises(AudioError) as err:
        decode(blob, limits)
    assert err.value.message
    return err.value.code


def test_header_claiming_100_hours_holding_1_second():
    # 8 kHz 8-bit: 100 hours fit a 32-bit RIFF size (2.88 GB) while the file holds one second.
    blob = wav_bytes(tone(1.0, 8000), rate=8000, bits=8, declared_data=100 * 3600 * 8000)
    assert len(blob) < 10_000
    assert code_of(blob) == "truncated_audio"


def test_wav_that_stops_mid_frame():
    whole = wav_bytes(tone(3.0))
    assert code_of(whole[: len(whole) // 2 + 1]) == "truncated_audio"  # cut inside a sample
    pcm, report = decode(whole)  # the untouched file decodes in full
    assert pcm.size == 48000 and report.duration_s == pytest.approx(3.0)


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_ogg_cut_off_is_truncated(tmp_path, cut):
    samples = (tone(20.0) / 32768).astype(np.float32)
    whole = encode(samples, 16000, tmp_path / "x.ogg", "ogg").read_bytes()
    assert decode(whole)[0].size == pytest.approx(20 * 16000, abs=200)
    assert code_of(whole[: int(len(whole) * cut)]) == "truncated_audio"


def test_zero_second_file():
    assert code_of(wav_bytes(np.zeros(0, dtype=np.int16))) == "no_audio"


def test_192_khz_decodes_correctly():
    pcm, report = decode(wav_bytes(tone(2.0, 192000), rate=192000))
    assert report.source_rate == 192000 and pcm.size == 32000
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float32)))
    assert np.argmax(spectrum) * 16000 / pcm.size == pytest.approx(440, abs=2)  # the tone survives resampling


def test_sample_rate_limit_refuses():
    blob = wav_bytes(tone(1.0, 96000), rate=96000)
    assert code_of(blob, DecodeLimits(max_sample_rate=48000)) == "sample_rate_too_high"


def test_60_channels_refused_by_the_channel_limit():
    blob = wav_bytes(tone(1.0, channels=60), channels=60)
    assert code_of(blob) == "too_many_channels"


def test_8_channels_are_mixed_down():
    pcm, report = decode(wav_bytes(tone(1.0, channels=8), channels=8))
    assert report.source_channels == 8 and pcm.size == 16000
    assert np.abs(pcm).max() > 4000  # the same tone in every channel stays audible in the mix


class RandomFile(io.RawIOBase):
    """A seekable file of `size` pseudo-random bytes generated on read, counting what was read:
    a multi-gigabyte file without the disk or memory."""

    def __init__(self, size: int) -> None:
        self.size, self.pos, self.bytes_read = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self.size - self.pos))
        rng = np.random.default_rng(self.pos)
        buffer[:n] = rng.bytes(n)
        self.pos += n
        self.bytes_read += n
        return n


def test_gigabytes_of_random_bytes_fail_fast():
    source = RandomFile(4 * 1024**3)
    with pytest.raises(AudioError) as err:
        list(decode_stream(source))
    assert err.value.code == "undecodable_audio"
    assert source.bytes_read < 64 * 1024**2  # the probe gave up; the 4 GiB were never read


def test_decode_wall_time_limit():
    # A limit of zero seconds trips on the first block, the same check a slow decode hits later.
    assert code_of(wav_bytes(tone(30.0)), DecodeLimits(timeout_s=0.0)) == "decode_timeout"


def test_malformed_headers_of_every_container_get_their_own_codes(tmp_path) -> None:
    """A broken header of each container ends with its reason code, never a Python exception (a
    WAV with 0 bits per sample used to raise AttributeError; one declaring 1 Hz was upsampled
    16,000 times into "1000 s of audio")."""
    from tests.audiofiles import MALFORMED_HEADERS

    found = {}
    for name, (make, _) in MALFORMED_HEADERS.items():
        try:
            decode(make(tmp_path))
            found[name] = "decoded"
        except AudioError as exc:
            assert exc.message and "Error:" not in exc.message
            found[name] = exc.code
    assert found == {name: code for name, (_, code) in MALFORMED_HEADERS.items()}


def test_sample_rate_floor_is_a_setting() -> None:
    blob = wav_bytes(tone(1.0, 3000), rate=3000)
    assert code_of(blob) == "sample_rate_too_low"
    _, report = decode(blob, DecodeLimits(min_sample_rate=2000))
    assert report.source_rate == 3000
