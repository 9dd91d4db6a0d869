"""Writing test recordings in the formats Hark accepts, with PyAV's encoders (no external tools)."""

from __future__ import annotations

import struct
from collections.abc import Iterable
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
