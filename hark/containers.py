"""Cheap completeness checks on container headers, run before decoding.

Decoders are lenient with cut-off files: FFmpeg's WAV demuxer trusts the file size over the RIFF
`data` size, and an Ogg stream cut mid-page simply ends early. Both would turn a half-finished
download into a "successful" job with the rest of the meeting missing. Reading a few kilobytes of
header and tail is enough to tell, so these checks run first and raise `truncated_audio`.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

OGG_EOS = 0x04
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # written by streaming encoders that could not seek back
_TAIL = 65536 + 27 + 255 + 255 * 255  # enough to hold the whole last Ogg page


class TruncatedError(Exception):
    """The header promises more than the file holds."""


def check_complete(source: BinaryIO) -> None:
    """Raise TruncatedError when `source` (seekable) is a WAV or Ogg file that was cut off.
    Other formats pass; the read position is restored."""
    start = source.tell()
    try:
        size = source.seek(0, io.SEEK_END)
        source.seek(0)
        head = source.read(12)
        if len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            _check_wav(source, size)
        elif head[:4] == b"OggS":
            _check_ogg(source, size)
    finally:
        source.seek(start)


def _check_wav(source: BinaryIO, size: int) -> None:
    """Walk the RIFF chunks to `data`; its declared size must fit in the file."""
    offset = 12
    byte_rate = 0
    while offset + 8 <= size:
        source.seek(offset)
        header = source.read(8)
        if len(header) < 8:
            return
        chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk == b"fmt ":
            fmt = source.read(16)
            if len(fmt) == 16:
                byte_rate = struct.unpack("<HHIIHH", fmt)[3]
        elif chunk == b"data":
            if length in _UNKNOWN_SIZES:
                return
            held = size - offset - 8
            if held < length:
                seconds = f" ({held / byte_rate:.1f} s of {length / byte_rate:.1f} s)" if byte_rate else ""
                raise TruncatedError(
                    f"the WAV header promises {length} bytes of audio but the file holds {held}{seconds}"
                )
            return
        offset += 8 + length + (length & 1)


def _check_ogg(source: BinaryIO, size: int) -> None:
    """The last page must end exactly at the end of the file and carry the end-of-stream flag."""
    tail_start = max(0, size - _TAIL)
    source.seek(tail_start)
    tail = source.read(size - tail_start)
    at = tail.rfind(b"OggS")
    while at >= 0:
        header = tail[at : at + 27]
        if len(header) == 27 and header[4] == 0:
            segments = tail[at + 27 : at + 27 + header[26]]
            end = at + 27 + header[26] + sum(segments)
            if len(segments) == header[26] and end == len(tail):
                if not header[5] & OGG_EOS:
                    raise TruncatedError("the Ogg stream has no end-of-stream page (the file was cut off)")
                return
        at = tail.rfind(b"OggS", 0, at)
    raise TruncatedError("the Ogg file ends in the middle of a page (the file was cut off)")
