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
    with pytest.raises(RuntimeError):
        with storage.writer("tests/aborted.bin") as writer:
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
