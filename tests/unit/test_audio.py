"""Decoding every common format to canonical PCM, and clear reason codes for broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hark.audio import AudioError, DecodeLimits, DecodeReport, decode_stream, pcm_to_float, seconds_to_byte
from tests.audiofiles import FORMATS, encode, read_wav

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.wav"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_formats_decode_to_16k_mono(tmp_path, fmt):
    samples, rate = read_wav(SAMPLE)
    path = encode(samples[: rate * 8], rate, tmp_path / f"x.{fmt}", fmt, channels=2 if fmt == "flac" else 1)
    report = DecodeReport()
    blocks = list(decode_stream(str(path), report, block_samples=16000))
    pcm = np.concatenate(blocks)
    assert pcm.dtype == np.int16
    assert abs(pcm.size / 16000 - 8.0) < 0.1
    assert all(b.size >= 16000 for b in blocks[:-1])
    # Lossy codecs change samples, but the signal must still be the recording, not noise/silence.
    reference = samples[: rate * 8]
    assert np.sqrt(np.mean(pcm_to_float(pcm) ** 2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=0.25)


def test_canonical_wav_passes_through_unchanged(tmp_path, monkeypatch):
    """A 16 kHz mono s16 WAV is already canonical PCM: its samples come out as they are, without
    the resampler (which cost an hour's decode a second of its three); a 44.1 kHz one still goes
    through it."""
    import av
    import soundfile

    resampled: list[bool] = []  # one entry per call: True for a frame, False for the final flush
    original = av.AudioResampler.resample
    monkeypatch.setattr(
        av.AudioResampler, "resample", lambda self, f: resampled.append(f is not None) or original(self, f)
    )
    samples = np.random.default_rng(3).integers(-20000, 20000, 16000 * 5 + 123).astype(np.int16)
    soundfile.write(tmp_path / "c.wav", samples, 16000, subtype="PCM_16")
    pcm = np.concatenate(list(decode_stream(str(tmp_path / "c.wav"), block_samples=16000)))
    assert np.array_equal(pcm, samples)
    assert not any(resampled)
    soundfile.write(tmp_path / "h.wav", samples, 44100, subtype="PCM_16")
    pcm = np.concatenate(list(decode_stream(str(tmp_path / "h.wav"))))
    assert any(resampled) and abs(pcm.size - samples.size * 16000 / 44100) < 50


def test_text_file_is_undecodable(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("not audio at all\n" * 100)
    with pytest.raises(AudioError) as err:
        list(decode_stream(str(path)))
    assert err.value.code == "undecodable_audio"


def test_truncated_mp3_is_reported(tmp_path):
    samples, rate = read_wav(SAMPLE)
    data = encode(samples, rate, tmp_path / "full.mp3", "mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as err:
        list(decode_stream(str(cut)))
    assert err.value.code == "truncated_audio"


def test_duration_limit(tmp_path):
    samples, rate = read_wav(SAMPLE)
    path = encode(samples[: rate * 5], rate, tmp_path / "x.wav", "wav")
    with pytest.raises(AudioError) as err:
        list(decode_stream(str(path), limits=DecodeLimits(max_duration_s=2.0)))
    assert err.value.code == "too_long"


def test_byte_offsets():
    assert seconds_to_byte(1.0) == 32000
    assert seconds_to_byte(0.5) == 16000


def test_decode_one_channel_of_a_stereo_file():
    """`channel` picks one channel out (job option channels: separate); the mix averages them."""
    import io
    import wave

    t = np.arange(16000) / 16000
    left = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.stack([left, np.zeros_like(left)], 1).tobytes())
    data = buf.getvalue()

    def decoded(channel: int | None) -> np.ndarray:
        return np.concatenate(list(decode_stream(io.BytesIO(data), DecodeReport(), channel=channel)))

    assert np.abs(decoded(0) - left).max() <= 1
    assert np.abs(decoded(1)).max() == 0
    assert abs(int(np.abs(decoded(None)).max()) - 4000) <= 2
    with pytest.raises(AudioError) as err:
        decoded(2)
    assert err.value.code == "no_such_channel"
