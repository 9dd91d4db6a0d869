"""S3 storage against the real S3-protocol server: multipart writes, ranged and seekable reads."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from hark.storage import PART_SIZE, Storage

pytestmark = pytest.mark.integration


def test_multipart_writer_round_trip(settings):
    storage = Storage(settings)
    data = os.urandom(2 * PART_SIZE + 12345)  # two full parts and a short last one
    writer = storage.writer("tests/multipart.bin")
    for i in range(0, len(data), 1_000_003):  # odd write sizes, straddling part boundaries
        writer.write(data[i : i + 1_000_003])
    writer.finish()
    assert writer.bytes_written == len(data)
    assert writer.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert storage.size("tests/multipart.bin") == len(data)
    assert storage.get_range("tests/multipart.bin", PART_SIZE - 5, PART_SIZE + 5) == data[PART_SIZE - 5 : PART_SIZE + 5]

    reader = storage.reader("tests/multipart.bin", buffer_size=64 * 1024)
    reader.seek(-100, io.SEEK_END)
    assert reader.read() == data[-100:]
    reader.seek(PART_SIZE)
    assert reader.read(10) == data[PART_SIZE : PART_SIZE + 10]


def test_aborted_upload_leaves_nothing(settings):
    storage = Storage(settings)
    with pytest.raises(RuntimeError), storage.writer("tests/aborted.bin") as writer:
        writer.write(os.urandom(PART_SIZE + 1))
        raise RuntimeError("client went away")
    assert not storage.exists("tests/aborted.bin")
    uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])
    assert not [u for u in uploads if u["Key"] == "tests/aborted.bin"]


def test_delete_prefix(settings):
    storage = Storage(settings)
    for i in range(3):
        storage.put_bytes(f"tests/prefix/{i}", b"x")
    storage.put_bytes("tests/other", b"y")
    assert storage.delete_prefix("tests/prefix/") == 3
    assert not storage.exists("tests/prefix/0") and storage.exists("tests/other")


def test_pcm_chunks_read_back_as_one_stream(settings):
    """The canonical PCM is one-minute objects (hark/pcm_store.py); a read of any byte range, one
    crossing chunk boundaries or ending at the stream's end included, is the stream's bytes."""
    import uuid

    from hark.pcm_store import CHUNK_BYTES, PcmWriter, chunk_key, pcm_prefix, read_pcm

    storage, job = Storage(settings), uuid.uuid4()
    data = os.urandom(2 * CHUNK_BYTES + 54321)
    writer = PcmWriter(storage, job)
    for i in range(0, len(data), 700_001):  # odd block sizes, straddling chunk boundaries
        writer.write(data[i : i + 700_001])
        assert writer.readable_bytes == (i + len(data[i : i + 700_001])) // CHUNK_BYTES * CHUNK_BYTES
    assert writer.finish() == len(data)
    assert [key for key, _ in storage.objects(pcm_prefix(job))] == [chunk_key(job, n) for n in range(3)]
    for start, end in [
        (0, 10),
        (CHUNK_BYTES - 4, CHUNK_BYTES + 4),
        (10, 2 * CHUNK_BYTES + 10),
        (len(data) - 9, len(data)),
        (CHUNK_BYTES, 2 * CHUNK_BYTES),
        (5, 5),
    ]:
        assert read_pcm(storage, job, start, end) == data[start:end], (start, end)
    writer.abort()
    assert not list(storage.objects(pcm_prefix(job)))
