"""Writing test recordings in the formats Hark accepts, with PyAV's encoders (no external tools)."""
from __future__ import annotations

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
        if channels == 2:
            data = np.stack([data, data]).reshape(1, -1, order="F")
        else:
            data = data.reshape(1, -1)
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
            frame = av.AudioFrame.from_ndarray((np.clip(block, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
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
