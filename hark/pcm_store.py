"""The canonical PCM of a job in S3, as one object per minute of audio.

Prepare streams its model work out while it still decodes (worker/tasks/prepare.py): the first
batches run while the rest of the recording is decoded. A task can only read audio that is
already an object, and one multipart object becomes readable only once it is complete, so the
audio is written as consecutive fixed-size chunks `pcm/<job>.s16le/<n>`, each readable as soon as
it is put. Byte offsets stay those of one continuous 16 kHz s16le stream (sample × 2); a read of
[start, end) takes the one or two chunks it spans.
"""

from __future__ import annotations

from hark.audio import SAMPLE_RATE
from hark.storage import Storage

# One minute of 16 kHz 16-bit mono: 1.92 MB, 60 objects an hour.
CHUNK_BYTES = 60 * SAMPLE_RATE * 2


def pcm_prefix(job_id: object) -> str:
    """Every chunk of the job's PCM; inside `pcm/<job>.`, so deleting that prefix removes it."""
    return f"pcm/{job_id}.s16le/"


def chunk_key(job_id: object, n: int) -> str:
    return f"{pcm_prefix(job_id)}{n:06d}"


class PcmWriter:
    """Appends PCM bytes; each full chunk is put at once. `readable_bytes` says how much of the
    stream tasks can read already."""

    def __init__(self, storage: Storage, job_id: object) -> None:
        self.storage, self.job_id = storage, job_id
        self._buffer = bytearray()
        self._chunks = 0

    @property
    def readable_bytes(self) -> int:
        return self._chunks * CHUNK_BYTES

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:
            self._put(bytes(self._buffer[:CHUNK_BYTES]))
            del self._buffer[:CHUNK_BYTES]

    def finish(self) -> int:
        """Put the last, shorter chunk; returns the stream's length in bytes."""
        total = self.readable_bytes + len(self._buffer)
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return total

    def abort(self) -> None:
        """Remove what was put (a failed decode leaves nothing behind)."""
        self._buffer.clear()
        self.storage.delete_prefix(pcm_prefix(self.job_id))

    def _put(self, body: bytes) -> None:
        self.storage.put_bytes(chunk_key(self.job_id, self._chunks), body)
        self._chunks += 1


def read_pcm(storage: Storage, job_id: object, start: int, end: int) -> bytes:
    """Bytes [start, end) of the job's PCM stream, one ranged GET per chunk it touches."""
    parts: list[bytes] = []
    position = start
    while position < end:
        n, offset = divmod(position, CHUNK_BYTES)
        take = min(end - position, CHUNK_BYTES - offset)
        data = storage.get_range(chunk_key(job_id, n), offset, offset + take)
        parts.append(data)
        position += len(data)
        if len(data) < take:  # the stream's last chunk ended
            break
    return b"".join(parts)
