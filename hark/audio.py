"""Decoding any common audio format to Hark's canonical PCM: 16 kHz, mono, signed 16-bit little-endian.

Decoding is streamed: blocks of samples are yielded as the decoder produces them, so memory does
not grow with the recording's length. Errors are raised as `AudioError` with a reason code that
ends up on the failed job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import av
import numpy as np

from hark.containers import TruncatedError, check_complete

log = logging.getLogger("hark.audio")
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
    min_sample_rate: int = 4000
    timeout_s: float = 3600.0
    # Share of the recording that may be damaged (kept as silence) before it fails corrupt_audio.
    max_damaged_fraction: float = 0.2


@dataclass
class DecodeReport:
    """Filled in while decoding; complete once the generator is exhausted."""

    codec: str = ""
    container: str = ""
    source_rate: int = 0
    source_channels: int = 0
    declared_duration_s: float | None = None
    samples: int = 0
    # Stretches [start_s, end_s) of the canonical audio that could not be decoded and are silence.
    damaged: list[tuple[float, float]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def damaged_s(self) -> float:
        return sum(b - a for a, b in self.damaged)

    def damage(self, start_s: float, end_s: float) -> None:
        """Record a damaged stretch, merged with the previous one when they touch."""
        start_s, end_s = round(start_s, 3), round(end_s, 3)
        if self.damaged and start_s - self.damaged[-1][1] < MERGE_WITHIN_S:
            self.damaged[-1] = (self.damaged[-1][0], max(end_s, self.damaged[-1][1]))
        else:
            self.damaged.append((start_s, end_s))


def seconds_to_byte(seconds: float) -> int:
    """Byte offset of a time in the canonical PCM object (sample * 2)."""
    return int(round(seconds * SAMPLE_RATE)) * BYTES_PER_SAMPLE


# Sample formats that can hold NaN or infinity, which no resampler turns into meaningful audio.
FLOAT_FORMATS = frozenset({"flt", "fltp", "dbl", "dblp"})
# A frame that starts this much later than the audio so far ends marks a stretch lost to damage
# (longer than any codec's frame, shorter than the ±0.5 s the damaged ranges promise).
GAP_TOLERANCE_S = 0.1
# Damaged stretches closer than this are one (a stray frame the demuxer found in garbage between them).
MERGE_WITHIN_S = 0.25
# Demuxer errors in a row after which the rest of the file is taken as unreadable.
MAX_DEMUX_ERRORS = 200
# MP3 packets looked at to tell constant from variable bitrate.
CBR_PROBE_PACKETS = 16


def decode_stream(
    source: str | BinaryIO,
    report: DecodeReport | None = None,
    block_samples: int = SAMPLE_RATE * 10,
    limits: DecodeLimits = DecodeLimits(),
    channel: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield int16 mono 16 kHz blocks of about `block_samples` samples: the channels mixed down,
    or only `channel` (0-based; one speaker per channel, job option `channels: separate`).

    Damaged packets (a bad sector, a burst of garbage, a run of missing bytes) are skipped and
    decoding resumes at the next good one; the time they covered, known from the timestamps of
    the packets around them (or, for constant-bitrate MP3, which has none, from the byte
    position), is kept as silence so every later timestamp stays true, and is recorded in
    `report.damaged`.

    Raises AudioError with codes: `undecodable_audio` (not a media file), `no_audio_stream`,
    `unsupported_codec` (the header describes audio no decoder reads, e.g. 0 bits per sample),
    `corrupt_audio` (more than `limits.max_damaged_fraction` of it damaged), `too_long`,
    `no_audio` (no samples at all), `truncated_audio` (the header promises more than the file
    holds), `too_many_channels`, `sample_rate_too_high`, `sample_rate_too_low`, `decode_timeout`
    (decoding took longer than `limits.timeout_s`), `invalid_samples` (NaN or infinite
    floating-point samples).
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
        if stream.codec_context is None or stream.codec_context.codec is None:
            raise AudioError("unsupported_codec", "the header describes audio no decoder can read")
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
        if report.source_rate < limits.min_sample_rate:
            raise AudioError(
                "sample_rate_too_low", f"{report.source_rate} Hz; the lowest accepted is {limits.min_sample_rate} Hz"
            )
        if container.duration:
            report.declared_duration_s = container.duration / 1_000_000
        elif stream.duration and stream.time_base:
            report.declared_duration_s = float(stream.duration * stream.time_base)
        pending: list[np.ndarray] = []
        pending_len = 0
        max_samples = int(limits.max_duration_s * SAMPLE_RATE)

        if channel is not None and channel >= max(report.source_channels, 1):
            raise AudioError(
                "no_such_channel", f"channel {channel + 1} asked for; the file has {report.source_channels}"
            )
        for block in _read_safely(_placed(container, stream, report, channel)):
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
    if report.damaged_s > limits.max_damaged_fraction * report.duration_s:
        raise AudioError(
            "corrupt_audio",
            f"{report.damaged_s:.1f} s of {report.duration_s:.1f} s could not be decoded "
            f"(the limit is {limits.max_damaged_fraction:.0%})",
        )
    declared = report.declared_duration_s
    if declared and report.duration_s < 0.9 * declared - 1.0:
        raise AudioError(
            "truncated_audio",
            f"the header promises {declared:.1f} s but only {report.duration_s:.1f} s could be decoded",
        )


# What the decoding library raises on a file it cannot make sense of, beyond its own errors (a
# header that leaves a field unset, a size that overflows): the file's fault, not the worker's.
HOSTILE_ERRORS = (av.FFmpegError, ValueError, TypeError, AttributeError, IndexError, ZeroDivisionError, OverflowError)


def _read_safely(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """`blocks`, with any error the file provokes in the decoder turned into `undecodable_audio`
    (logged with its traceback for the operator), so no job shows a Python exception."""
    try:
        yield from blocks
    except HOSTILE_ERRORS as exc:
        log.warning("decoder error on a hostile file", exc_info=True)
        raise AudioError("undecodable_audio", "the decoder could not read this file") from exc


def _packets(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.Packet]:
    """The stream's packets; after a demuxer error (damaged container data) reading resumes
    where the demuxer stopped, as it resynchronises on the next frame or page it recognises."""
    errors = 0
    while True:
        try:
            for packet in container.demux(stream):
                errors = 0
                if packet.size:
                    yield packet
            return
        except av.FFmpegError:
            errors += 1
            if errors >= MAX_DEMUX_ERRORS:
                return  # nothing readable follows; what is missing shows as damage or truncation


class _Clock:
    """Where each decoded frame belongs in the recording, in seconds from its start.

    From the frame's timestamp; for constant-bitrate MP3 (every packet the same size, give or take
    a padding byte) from the packet's byte position instead, since MP3 has no timestamps and the
    demuxer counts only the frames it found, which would pull everything after a damaged stretch
    earlier by its length."""

    def __init__(self, stream: av.AudioStream) -> None:
        self.stream = stream
        self.origin: float | None = (
            float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else None
        )
        self.cbr = stream.codec_context.name in ("mp3", "mp3float", "mp2", "mp2float")
        self.first: tuple[int, float] | None = None  # (byte position, time) of the first packet
        self.sizes: list[int] = []

    def packet_time(self, packet: av.Packet) -> float | None:
        """The packet's time by its byte position (CBR MP3 only), else None."""
        if not self.cbr or packet.pos is None or packet.pos < 0 or not self.stream.codec_context.bit_rate:
            return None
        if len(self.sizes) < CBR_PROBE_PACKETS:  # judged on the first packets: later ones may be garbage
            self.sizes.append(packet.size)
            if max(self.sizes) - min(self.sizes) > 1:
                self.cbr = False  # variable bitrate: positions say nothing about time
                return None
        if self.first is None:
            self.first = (packet.pos, float(packet.pts * packet.time_base) if packet.pts is not None else 0.0)
        return self.first[1] + (packet.pos - self.first[0]) * 8 / self.stream.codec_context.bit_rate

    def frame_time(self, frame: av.AudioFrame, by_position: float | None) -> float | None:
        """The frame's start relative to the recording's start, or None when unknown."""
        t = by_position if by_position is not None else frame.time
        if t is None:
            return None
        if self.origin is None:
            self.origin = t
        return t - self.origin


def _placed(
    container: av.container.InputContainer, stream: av.AudioStream, report: DecodeReport, channel: int | None = None
) -> Iterator[np.ndarray]:
    """Decoded audio as canonical int16 blocks, with silence where damaged packets were skipped;
    with `channel`, that channel alone (resampled keeping the channels, then picked out).

    The silence goes through the resampler like the audio around it (as silent frames of the
    source's own format), so the audio after a gap comes out exactly at its time."""
    codec = stream.codec_context
    resampler: av.AudioResampler | None = None
    clock = _Clock(stream)
    resampling = False  # once the resampler holds samples, every later frame goes through it too
    fed = 0.0  # seconds of audio decoded so far, silence included (the resampler may hold some back)
    declared = report.declared_duration_s
    lost_since: float | None = None  # where the audio stood when a packet failed to decode
    last: av.AudioFrame | None = None  # the latest good frame: the format silence is made in

    def picked(f: av.AudioFrame) -> np.ndarray:
        samples = f.to_ndarray().reshape(-1).astype(np.int16, copy=False)
        if channel is None:
            return samples
        return np.ascontiguousarray(samples.reshape(-1, f.layout.nb_channels)[:, channel])

    def out(frame: av.AudioFrame) -> Iterator[np.ndarray]:
        nonlocal resampling, fed, resampler
        fed += frame.samples / frame.sample_rate
        if not resampling and channel is None and is_canonical(frame):
            # Already 16 kHz mono s16 (a WAV as Hark stores it): the resampler would only copy
            # it, and cost more than decoding (1 s of 3 for an hour).
            yield frame.to_ndarray().reshape(-1)
            return
        resampling = True
        if resampler is None:
            layout = "mono" if channel is None else frame.layout.name
            resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
        for f in resampler.resample(frame):
            yield picked(f)

    def silence(seconds: float, like: av.AudioFrame) -> Iterator[np.ndarray]:
        remaining = int(round(seconds * like.sample_rate))
        while remaining > 0:  # in frames of at most a second, so a long gap never sits in memory
            n = min(remaining, like.sample_rate)
            frame = av.AudioFrame(format=like.format.name, layout=like.layout.name, samples=n)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = like.sample_rate
            yield from out(frame)
            remaining -= n

    for packet in _packets(container, stream):
        by_position = clock.packet_time(packet)
        try:
            frames = codec.decode(packet)
        except av.FFmpegError:
            if lost_since is None:
                lost_since = fed
            continue
        for frame in frames:
            if frame.format.name in FLOAT_FORMATS and not np.isfinite(frame.to_ndarray()).all():
                raise AudioError("invalid_samples", f"NaN or infinite samples after {fed:.1f} s")
            at = clock.frame_time(frame, by_position)
            if by_position is not None and at is not None:
                # A byte position gives the time only roughly; frames lost are whole frames.
                frame_s = frame.samples / frame.sample_rate
                at = fed + round((at - fed) / frame_s) * frame_s
            by_position = None  # a packet's later frames follow on from its first
            if at is not None and at - fed > GAP_TOLERANCE_S and (declared is None or at < declared + 1.0):
                # Packets were lost before this frame: silence in their place, so time stays true.
                report.damage(fed, at)
                yield from silence(at - fed, frame)
            elif lost_since is not None:
                # A packet failed but time shows no gap (no timestamps): the damage is a frame long.
                report.damage(lost_since, max(fed, lost_since + frame.samples / frame.sample_rate))
            lost_since = None
            last = frame
            yield from out(frame)
    try:
        tail = codec.decode(None)
    except av.FFmpegError:
        tail = []
    for frame in tail:
        yield from out(frame)
    if lost_since is not None and last is not None:
        # The last packets were damaged. How much they held is not known (a file cut short looks
        # the same, and is judged by its declared duration): one frame is recorded.
        report.damage(lost_since, max(fed, lost_since + last.samples / last.sample_rate))
    if resampling and resampler is not None:
        for f in resampler.resample(None):
            yield picked(f)


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
