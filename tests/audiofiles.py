"""Writing test recordings in the formats Hark accepts, with PyAV's encoders (no external tools)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import av
import numpy as np

# format name → (container, codec, sample rate)
FORMATS = {
    "wav": ("wav", "pcm_s16le", 16000),
    "flac": ("flac", "flac", 44100),
    "mp3": ("mp3", "libmp3lame", 44100),
    "ogg": ("ogg", "libopus", 48000),
    "m4a": ("ipod", "aac", 44100),
}


def encode(samples: np.ndarray, rate: int, path: Path, fmt: str, channels: int = 1) -> Path:
    """Encode float32 mono samples at `rate` into `path` as `fmt` (resampled to the codec's rate)."""
    container_name, codec, out_rate = FORMATS[fmt]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), mode="w", format=container_name) as out:
        stream = out.add_stream(codec, rate=out_rate, layout=layout)
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=out_rate)
        pcm = np.clip(samples, -1, 1)
        data = (pcm * 32767).astype(np.int16)
        data = np.stack([data, data]).reshape(1, -1, order="F") if channels == 2 else data.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
        frame.sample_rate = rate
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1), rate


def encode_blocks(blocks: Iterable[np.ndarray], rate: int, path: Path, fmt: str) -> Path:
    """Encode float32 mono blocks as they come (an hours-long recording never sits in memory)."""
    container_name, codec, out_rate = FORMATS[fmt]
    with av.open(str(path), mode="w", format=container_name) as out:
        stream = out.add_stream(codec, rate=out_rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        pts = 0
        for block in blocks:
            frame = av.AudioFrame.from_ndarray(
                (np.clip(block, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, pts
            pts += block.size
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    out.mux(packet)
        for resampled in resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def wav_bytes(
    samples: np.ndarray, rate: int = 16000, channels: int = 1, bits: int = 16, declared_data: int | None = None
) -> bytes:
    """A PCM WAV whose `data` chunk may declare a size other than what follows (a lying header)."""
    if bits == 16:
        data = samples.astype("<i2").tobytes()
    else:
        data = (samples.astype(np.int32) // 256 + 128).astype(np.uint8).tobytes()
    size = len(data) if declared_data is None else declared_data
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", min(0xFFFFFFFF, 36 + size))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", size)
        + data
    )


def tone(seconds: float, rate: int = 16000, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    return np.repeat(mono, channels) if channels > 1 else mono


def _patched(blob: bytes, marker: bytes, offset: int, new: bytes) -> bytes:
    """`blob` with `new` written `offset` bytes after the first `marker` (which must be there)."""
    at = blob.index(marker) + offset
    return blob[:at] + new + blob[at + len(new) :]


def _wav_with_fmt(fmt: bytes, fmt_size: int | None = None) -> bytes:
    data = tone(1.0).astype("<i2").tobytes()
    return (
        b"RIFF"
        + struct.pack("<I", 20 + len(fmt) + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt) if fmt_size is None else fmt_size)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def _encoded_tone(fmt: str, tmp: Path) -> bytes:
    return encode(tone(2.0).astype(np.float32) / 32768, 16000, tmp / f"header-src.{fmt}", fmt).read_bytes()


def _broken(fmt: str, marker: bytes, offset: int, new: bytes) -> Callable[[Path], bytes]:
    return lambda tmp: _patched(_encoded_tone(fmt, tmp), marker, offset, new)


def _const(blob: bytes) -> Callable[[Path], bytes]:
    return lambda tmp: blob


# A file of each container the decoder accepts with a broken header, and the reason code its job
# must fail with: name -> (make(tmp dir) -> bytes, code).
MALFORMED_HEADERS: dict[str, tuple[Callable[[Path], bytes], str]] = {
    # fmt chunk: 0 bits per sample and block align 0 (no decoder maps to it)
    "wav-0-bits.wav": (_const(_wav_with_fmt(struct.pack("<HHIIHH", 1, 1, 16000, 0, 0, 0))), "unsupported_codec"),
    "wav-1-hz.wav": (_const(wav_bytes(tone(0.1), rate=1)), "sample_rate_too_low"),
    "wav-0-hz.wav": (_const(_wav_with_fmt(struct.pack("<HHIIHH", 1, 1, 0, 0, 2, 16))), "undecodable_audio"),
    "wav-unknown-format-tag.wav": (
        _const(_wav_with_fmt(struct.pack("<HHIIHH", 0x1234, 1, 16000, 32000, 2, 16))),
        "unsupported_codec",
    ),
    "wav-0-channels.wav": (_const(_wav_with_fmt(struct.pack("<HHIIHH", 1, 0, 16000, 32000, 2, 16))), "no_audio"),
    "wav-short-fmt.wav": (_const(_wav_with_fmt(struct.pack("<H", 1))), "undecodable_audio"),
    "wav-fmt-size-2gb.wav": (
        _const(_wav_with_fmt(struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16), fmt_size=0x7FFFFFFF)),
        "undecodable_audio",
    ),
    "flac-bad-magic.flac": (_broken("flac", b"fLaC", 0, b"fLaX"), "undecodable_audio"),
    "flac-streaminfo-zeroed.flac": (_broken("flac", b"fLaC", 8, bytes(34)), "no_audio"),
    "ogg-opushead-version-255.ogg": (_broken("ogg", b"OpusHead", 8, b"\xff"), "undecodable_audio"),
    "ogg-opushead-0-channels.ogg": (_broken("ogg", b"OpusHead", 9, b"\x00"), "undecodable_audio"),
    "m4a-moov-renamed.m4a": (_broken("m4a", b"moov", 0, b"moox"), "undecodable_audio"),
    "m4a-stsd-zeroed.m4a": (_broken("m4a", b"stsd", 4, bytes(40)), "undecodable_audio"),
    "m4a-sample-count-huge.m4a": (_broken("m4a", b"stsz", 12, b"\xff\xff\xff\xf0"), "undecodable_audio"),
    "mp3-id3-size-huge.mp3": (
        lambda tmp: b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + _encoded_tone("mp3", tmp),
        "undecodable_audio",
    ),
    "mp3-frame-count-1e9.mp3": (_broken("mp3", b"Info", 8, struct.pack(">I", 10**9)), "truncated_audio"),
}
