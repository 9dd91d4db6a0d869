"""Decoding any common audio format to Hark's canonical PCM: 16 kHz, mono, signed 16-bit little-endian.

Decoding is streamed: blocks of samples are yielded as the decoder produces them, so memory does
not grow with the recording's length. Errors are raised as `AudioError` with a reason code that
ends up on the failed job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import av
import numpy as np

from hark.containers import TruncatedError, check_complete

SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2


class AudioError(Exception):
    """A recording that cannot be turned into audio; `code` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DecodeLimits:
    """What a worker agrees to decode; the worker's settings fill it in (see `hark.settings`)."""

    max_duration_s: float = 12 * 3600.0
    max_channels: int = 16
    max_sample_rate: int = 192000
    timeout_s: float = 3600.0


@dataclass
class DecodeReport:
    """Filled in while decoding; complete once the generator is exhausted."""

    codec: str = ""
    container: str = ""
    source_rate: int = 0
    source_channels: int = 0
    declared_duration_s: float | None = None
    samples: int = 0

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE


def seconds_to_byte(seconds: float) -> int:
    """Byte offset of a time in the canonical PCM object (sample * 2)."""
    return int(round(seconds * SAMPLE_RATE)) * BYTES_PER_SAMPLE


# Sample formats that can hold NaN or infinity, which no resampler turns into meaningful audio.
FLOAT_FORMATS = frozenset({"flt", "fltp", "dbl", "dblp"})


def decode_stream(
    source: str | BinaryIO,
    report: DecodeReport | None = None,
    block_samples: int = SAMPLE_RATE * 10,
    limits: DecodeLimits = DecodeLimits(),
) -> Iterator[np.ndarray]:
    """Yield int16 mono 16 kHz blocks of about `block_samples` samples.

    Raises AudioError with codes: `undecodable_audio` (not a media file), `no_audio_stream`,
    `corrupt_audio` (decoder error mid-stream), `too_long`, `no_audio` (no samples at all),
    `truncated_audio` (the header promises more than the file holds), `too_many_channels`,
    `sample_rate_too_high`, `decode_timeout` (decoding took longer than `limits.timeout_s`),
    `invalid_samples` (NaN or infinite floating-point samples).
    """
    report = report if report is not None else DecodeReport()
    started = time.monotonic()
    _check_container(source)
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AudioError("undecodable_audio", f"not a readable audio file: {exc}") from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioError("no_audio_stream", "the file has no audio stream")
        stream = streams[0]
        report.container = container.format.name
        report.codec = stream.codec_context.name
        report.source_rate = stream.codec_context.sample_rate or 0
        report.source_channels = stream.codec_context.channels or 0
        if report.source_channels > limits.max_channels:
            raise AudioError(
                "too_many_channels", f"{report.source_channels} channels; the limit is {limits.max_channels}"
            )
        if report.source_rate > limits.max_sample_rate:
            raise AudioError(
                "sample_rate_too_high", f"{report.source_rate} Hz; the limit is {limits.max_sample_rate} Hz"
            )
        if container.duration:
            report.declared_duration_s = container.duration / 1_000_000
        elif stream.duration and stream.time_base:
            report.declared_duration_s = float(stream.duration * stream.time_base)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        pending_len = 0
        max_samples = int(limits.max_duration_s * SAMPLE_RATE)

        def frames() -> Iterator[av.AudioFrame]:
            resampling = False  # once the resampler holds samples, every later frame goes through it too
            try:
                for frame in container.decode(stream):
                    if frame.format.name in FLOAT_FORMATS and not np.isfinite(frame.to_ndarray()).all():
                        raise AudioError("invalid_samples", f"NaN or infinite samples after {report.duration_s:.1f} s")
                    if not resampling and is_canonical(frame):
                        # Already 16 kHz mono s16 (a WAV as Hark stores it): the resampler would
                        # only copy it, and cost more than decoding (1 s of 3 for an hour).
                        yield frame
                    else:
                        resampling = True
                        yield from resampler.resample(frame)
                yield from resampler.resample(None)
            except av.FFmpegError as exc:
                raise AudioError("corrupt_audio", f"decoding failed after {report.duration_s:.1f} s: {exc}") from exc

        for out in frames():
            block = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            report.samples += block.size
            if report.samples > max_samples:
                raise AudioError("too_long", f"longer than the limit of {limits.max_duration_s:.0f} s")
            if time.monotonic() - started > limits.timeout_s:
                raise AudioError(
                    "decode_timeout",
                    f"decoding took over {limits.timeout_s:.0f} s (stopped after {report.duration_s:.1f} s of audio)",
                )
            pending.append(block)
            pending_len += block.size
            if pending_len >= block_samples:
                yield np.concatenate(pending)
                pending, pending_len = [], 0
        if pending:
            yield np.concatenate(pending)
    if report.samples == 0:
        raise AudioError("no_audio", "the file decodes to no audio samples")
    declared = report.declared_duration_s
    if declared and report.duration_s < 0.9 * declared - 1.0:
        raise AudioError(
            "truncated_audio",
            f"the header promises {declared:.1f} s but only {report.duration_s:.1f} s could be decoded",
        )


def is_canonical(frame: av.AudioFrame) -> bool:
    """The frame is packed s16 mono at 16 kHz: its samples are Hark's canonical PCM as they are."""
    return frame.format.name == "s16" and frame.layout.nb_channels == 1 and frame.sample_rate == SAMPLE_RATE


def _check_container(source: str | BinaryIO) -> None:
    """Refuse a cut-off WAV/Ogg before decoding it (the decoder would quietly stop early)."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as f:
                check_complete(f)
        else:
            check_complete(source)
    except TruncatedError as exc:
        raise AudioError("truncated_audio", str(exc)) from exc


def pcm_to_float(pcm: bytes | np.ndarray) -> np.ndarray:
    """Canonical s16le bytes (or int16 samples) to float32 in [-1, 1]."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else pcm
    return samples.astype(np.float32) / 32768.0
