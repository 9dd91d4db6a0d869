"""Decoding around damage: a damaged corpus generated here (speech encoded as MP3, Ogg/Opus, M4A/AAC,
FLAC and WAV with PyAV's encoders, then hit by a burst of garbage, a dropped run of bytes or a
zeroed region), decoded as prepare decodes it. For each file: what comes out (done, or which
reason code), which stretches are reported damaged (within ±0.5 s of the packets the damage hit),
and that everything outside them is the undamaged recording, at its true time.

What a format cannot tell is asserted as such: PCM WAV has no framing, so garbage plays as noise
and zeros as silence, unreported, and a dropped run makes the file shorter than its header
(`truncated_audio`, as a cut-off download); MP3 has no timestamps, so after a dropped run the
rest of the recording comes that much earlier (the damage is still reported where it happened);
an M4A's sample table holds absolute byte offsets, so after a dropped run nothing can be found."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from hark.audio import SAMPLE_RATE, AudioError, DecodeLimits, DecodeReport, decode_stream
from tests.audiofiles import encode, read_wav

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 20.0
TOLERANCE_S = 0.5
# Where each kind of damage hits (fraction of the file) and how much of it (fraction of the file).
DAMAGE = {"garbage": (0.3, 0.025), "dropped": (0.55, 0.025), "zeroed": (0.75, 0.025)}
# What each damaged file ends as: "done", or the reason code it fails with.
OUTCOME = {
    ("wav", "dropped"): "truncated_audio",
    ("m4a", "dropped"): "undecodable_audio",
}
# Damage a format cannot see: it decodes as noise or silence in its place, and nothing is reported.
UNSEEN = {("wav", "garbage"), ("wav", "zeroed")}
# Time a dropped run takes out for good (no timestamps): the rest comes that much earlier.
SHIFTED = {("mp3", "dropped")}


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    samples, rate = read_wav(ROOT / "examples" / "sample.wav")
    assert rate == SAMPLE_RATE
    return samples[: int(SECONDS * rate)]


@pytest.fixture(scope="module")
def sources(speech, tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("damaged")
    return {fmt: encode(speech, SAMPLE_RATE, tmp / f"clean.{fmt}", fmt).read_bytes() for fmt in FORMATS}


FORMATS = ("mp3", "ogg", "m4a", "flac", "wav")


def damaged(blob: bytes, kind: str, seed: int = 5) -> tuple[bytes, int, int]:
    """The file with `kind` of damage; returns it and the byte range of the original it hit."""
    at, share = DAMAGE[kind]
    a = int(len(blob) * at)
    b = a + int(len(blob) * share)
    data = bytearray(blob)
    if kind == "garbage":
        data[a:b] = np.random.default_rng(seed).bytes(b - a)
    elif kind == "dropped":
        del data[a:b]
    else:
        data[a:b] = bytes(b - a)
    return bytes(data), a, b


def hit_seconds(blob: bytes, a: int, b: int) -> tuple[float, float]:
    """The stretch of the recording held by the packets whose bytes lie in [a, b) of the clean file
    (a packet's bytes run to where the next one starts: for Ogg the page, for the others the frame)."""
    with av.open(io.BytesIO(blob)) as c:
        stream = c.streams.audio[0]
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        packets = [
            (p.pos, float(p.pts * p.time_base), float(p.duration * p.time_base)) for p in c.demux(stream) if p.size
        ]
    starts = sorted({pos for pos, _, _ in packets})
    end_of = {pos: nxt for pos, nxt in zip(starts, [*starts[1:], len(blob)], strict=True)}
    hit = [(t, t + d) for pos, t, d in packets if pos < b and end_of[pos] > a]
    return min(t for t, _ in hit) - origin, max(e for _, e in hit) - origin


def decode(blob: bytes) -> tuple[np.ndarray, DecodeReport]:
    report = DecodeReport()
    audio = np.concatenate(list(decode_stream(io.BytesIO(blob), report)))
    return audio.astype(np.float32) / 32768, report


def matches(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two stretches of audio (1.0: the same)."""
    n = min(a.size, b.size)
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


@pytest.mark.parametrize("kind", sorted(DAMAGE))
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_file_is_decoded_around_its_damage(sources, fmt, kind) -> None:
    clean = sources[fmt]
    blob, a, b = damaged(clean, kind)
    outcome = OUTCOME.get((fmt, kind), "done")
    if outcome != "done":
        with pytest.raises(AudioError) as err:
            decode(blob)
        assert err.value.code == outcome, err.value.message
        return
    reference, _ = decode(clean)
    audio, report = decode(blob)
    lo, hi = hit_seconds(clean, a, b)
    rate = SAMPLE_RATE
    if (fmt, kind) in UNSEEN:
        assert report.damaged == [] and report.damaged_s == 0
        assert audio.size == reference.size
    else:
        assert len(report.damaged) == 1, report.damaged
        start, end = report.damaged[0]
        assert abs(start - lo) <= TOLERANCE_S and abs(end - hi) <= TOLERANCE_S, (report.damaged, (lo, hi))
        assert report.damaged_s == pytest.approx(end - start)
        # (but for the resampler's filter ringing for a few samples at its edges)
        assert (fmt, kind) in SHIFTED or not audio[int((start + 0.01) * rate) : int((end - 0.01) * rate)].any(), (
            "a damaged stretch is not silence"
        )
    # What came before the damage is the recording as it is.
    before = slice(0, int((lo - TOLERANCE_S) * rate))
    assert matches(audio[before], reference[before]) > 0.99
    after = int((hi + TOLERANCE_S) * rate)
    if (fmt, kind) in SHIFTED:
        # The dropped stretch is gone: the rest comes earlier by about its length (found here by
        # the best match), intact; the damage is reported where it happened.
        piece = audio[after : after + rate]
        lags = range(int((hi - lo - TOLERANCE_S) * rate), int((hi - lo + TOLERANCE_S) * rate), 4)
        best = max(lags, key=lambda lag: matches(piece, reference[after + lag : after + lag + rate]))
        best = max(
            range(best - 4, best + 5), key=lambda lag: matches(piece, reference[after + lag : after + lag + rate])
        )
        assert matches(audio[after:], reference[after + best :]) > 0.99
    else:
        # Timestamps stay true: the recording after the damage is at its own time.
        assert abs(audio.size - reference.size) <= 0.05 * rate
        assert matches(audio[after:], reference[after:]) > 0.99


def test_damage_over_the_limit_fails_as_corrupt(sources) -> None:
    """Past max_damaged_fraction (20 % by default) a recording fails corrupt_audio as before."""
    blob = bytearray(sources["flac"])
    third = len(blob) // 3
    blob[third : 2 * third] = np.random.default_rng(1).bytes(third)
    report = DecodeReport()
    with pytest.raises(AudioError) as err:
        list(decode_stream(io.BytesIO(bytes(blob)), report))
    assert err.value.code == "corrupt_audio"
    assert "could not be decoded" in err.value.message
    # With a higher limit the same file decodes, its damage reported.
    report = DecodeReport()
    list(decode_stream(io.BytesIO(bytes(blob)), report, limits=DecodeLimits(max_damaged_fraction=0.5)))
    assert 5.0 < report.damaged_s < 8.5
