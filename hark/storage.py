"""S3 storage through boto3 against any S3-protocol endpoint (MinIO, SeaweedFS, AWS).

Key layout: `raw/<job>/<original name>` uploads, `pcm/<job>.s16le/<n>` canonical audio (hark/pcm_store.py),
`out/<job>/transcript.<ext>` exports, `inbox/<tenant>/…` objects a tenant placed itself. Large objects are
written with multipart uploads from a
bounded buffer and read with ranged GETs, so no process holds a whole recording.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from hark.settings import Settings

PART_SIZE = 8 * 1024 * 1024  # S3 requires >= 5 MiB for every part but the last.


@lru_cache(maxsize=8)
def _client(endpoint: str, access_key: str, secret_key: str, region: str) -> Any:
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=config,
    )


class Storage:
    """The bucket of one deployment."""

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.client = _client(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region)
        # Presigned URLs must name the endpoint clients reach, which may differ from the internal one.
        public = settings.s3_public_endpoint or settings.s3_endpoint
        self.presign_client = _client(public, settings.s3_access_key, settings.s3_secret_key, settings.s3_region)
        # Wall seconds this instance spent reading and writing objects, for the job's stage timings.
        self.read_s = 0.0
        self.write_s = 0.0

    @contextmanager
    def timed(self, direction: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            setattr(self, direction, getattr(self, direction) + time.monotonic() - started)

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with self.timed("write_s"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def get_range(self, key: str, start: int, end_exclusive: int) -> bytes:
        """Bytes [start, end_exclusive) of an object: one HTTP range request."""
        if end_exclusive <= start:
            return b""
        with self.timed("read_s"):
            resp = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end_exclusive - 1}")
            return resp["Body"].read()

    def size(self, key: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError:
            return False

    def allow_browser_uploads(self, origins: list[str]) -> None:
        """CORS rules that let pages from `origins` PUT presigned parts (and read the ETag each
        part answers with, which completing the upload needs) and GET presigned objects."""
        self.client.put_bucket_cors(
            Bucket=self.bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": origins,
                        "AllowedMethods": ["PUT", "GET", "HEAD"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": ["ETag"],
                        "MaxAgeSeconds": 3600,
                    }
                ]
            },
        )

    def presigned_get(self, key: str, filename: str, content_type: str, expires_s: int = 3600) -> str:
        """A URL a client (a browser's audio element) GETs the object from, at the public endpoint.
        The response's type and disposition are fixed in the signed URL: whatever type the uploader
        claimed, the bucket's origin never serves it as a page (text/html) to render."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:200] or "recording"
        return self.presign_client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": f'attachment; filename="{safe}"',
            },
            ExpiresIn=expires_s,
        )

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def create_multipart(self, key: str, content_type: str = "application/octet-stream") -> str:
        return self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)["UploadId"]

    def presigned_part(self, key: str, upload_id: str, part_number: int, length: int, expires_s: int) -> str:
        """A URL the client PUTs one part to, straight to the S3 server (the web never sees the bytes).
        The part's length is signed into the URL: a PUT of any other length is refused by the server."""
        return self.presign_client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": part_number,
                "ContentLength": length,
            },
            ExpiresIn=expires_s,
        )

    def complete_multipart(self, key: str, upload_id: str, etags: list[tuple[int, str]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in etags]},
        )

    def uploaded_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """Parts the S3 server already holds for an unfinished upload: part_number, etag, size."""
        parts: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
            parts += [
                {"part_number": p["PartNumber"], "etag": p["ETag"], "size": p["Size"]} for p in page.get("Parts", [])
            ]
        return parts

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an unfinished upload and its parts; one already gone is not an error."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                raise

    def multipart_uploads(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Unfinished multipart uploads under `prefix`: Key, UploadId, Initiated."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Uploads", [])

    def objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`, page by page."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], int(obj["Size"])

    def writer(self, key: str, content_type: str = "application/octet-stream") -> MultipartWriter:
        return MultipartWriter(self, key, content_type)

    def reader(self, key: str, buffer_size: int = 1024 * 1024) -> io.BufferedReader:
        """A seekable file object over an S3 object, for decoders that need to seek (mp4/m4a)."""
        return io.BufferedReader(RangeReader(self, key), buffer_size=buffer_size)


class MultipartWriter(io.RawIOBase):
    """A write-only file object that streams into an S3 multipart upload.

    Memory is bounded by one part. It also counts bytes and computes the sha256 on the way, so
    the caller learns both without a second pass. `close()` completes the upload; `abort()` (or an
    exception inside a `with` block) discards it."""

    def __init__(self, storage: Storage, key: str, content_type: str) -> None:
        super().__init__()
        self.storage, self.key = storage, key
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._content_type = content_type
        self.sha256 = hashlib.sha256()
        self.bytes_written = 0
        self._finished = False

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._finished:
            raise ValueError("write to a finished upload")
        view = memoryview(data).cast("B")
        self._buffer += view
        self.sha256.update(view)
        self.bytes_written += len(view)
        while len(self._buffer) >= PART_SIZE:
            self._upload_part(bytes(self._buffer[:PART_SIZE]))
            del self._buffer[:PART_SIZE]
        return len(view)

    def seek(self, offset: int, whence: int = 0) -> int:
        # The multipart form parser rewinds its container once writing is done; nothing to do.
        return self.bytes_written

    def _upload_part(self, body: bytes) -> None:
        with self.storage.timed("write_s"):
            self._send_part(body)

    def _send_part(self, body: bytes) -> None:
        client = self.storage.client
        if self._upload_id is None:
            resp = client.create_multipart_upload(
                Bucket=self.storage.bucket, Key=self.key, ContentType=self._content_type
            )
            self._upload_id = resp["UploadId"]
        number = len(self._parts) + 1
        resp = client.upload_part(
            Bucket=self.storage.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def finish(self) -> None:
        """Complete the object. Small objects go up in one PUT."""
        if self._finished:
            return
        client = self.storage.client
        with self.storage.timed("write_s"):
            if self._upload_id is None:
                client.put_object(
                    Bucket=self.storage.bucket, Key=self.key, Body=bytes(self._buffer), ContentType=self._content_type
                )
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                client.complete_multipart_upload(
                    Bucket=self.storage.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        self._buffer.clear()
        self._finished = True

    def abort(self) -> None:
        if self._upload_id is not None and not self._finished:
            self.storage.client.abort_multipart_upload(
                Bucket=self.storage.bucket, Key=self.key, UploadId=self._upload_id
            )
        self._buffer.clear()
        self._finished = True

    def close(self) -> None:
        # Closing never completes implicitly: callers decide between finish() and abort().
        super().close()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
        self.close()


class RangeReader(io.RawIOBase):
    """A read-only, seekable raw file over an S3 object; each read is one ranged GET."""

    def __init__(self, storage: Storage, key: str) -> None:
        super().__init__()
        self.storage, self.key = storage, key
        self.length = storage.size(key)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.pos >= self.length or len(view) == 0:
            return 0
        end = min(self.length, self.pos + len(view))
        data = self.storage.get_range(self.key, self.pos, end)
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)


def raw_key(job_id: object, filename: str) -> str:
    return f"raw/{job_id}/{filename}"


def vad_key(job_id: object) -> str:
    """The VAD's per-frame speech probabilities (one byte a frame), beside the PCM so that deleting
    `pcm/<job>.` removes both; reduce trims speaker turns to speech with them."""
    return f"pcm/{job_id}.vad"


def diarization_key(job_id: object) -> str:
    """Speaker clustering done before reduce (worker/diarization_file.py), also beside the PCM."""
    return f"pcm/{job_id}.diarization"


def out_key(job_id: object, fmt: str) -> str:
    return f"out/{job_id}/transcript.{fmt}"


def inbox_prefix(tenant_id: object) -> str:
    """Where a tenant may place recordings itself (bucket sync, archive drops); jobs and batches
    may name objects under it, and only under it."""
    return f"inbox/{tenant_id}/"


def in_inbox(tenant_id: object, key: str) -> bool:
    """True when `key` is plainly inside the tenant's inbox: no `..` or empty path segments that a
    server might normalise into somewhere else."""
    prefix = inbox_prefix(tenant_id)
    if not key.startswith(prefix) or len(key) == len(prefix):
        return False
    parts = key[len(prefix) :].split("/")
    return all(p not in ("", ".", "..") for p in parts) and "\\" not in key
