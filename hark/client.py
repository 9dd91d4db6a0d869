"""A small HTTP client for Hark's API, used by the CLI and the demo; it streams uploads from disk."""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from hark.status import FINAL


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        err = body.get("error") or {}
        super().__init__(f"HTTP {status} {err.get('code', '')}: {err.get('message', body)}")
        self.status, self.code = status, err.get("code")


class MultipartFile:
    """A read()-able multipart/form-data body around open files, with a known length, so uploads
    of any size are sent in chunks instead of being built in memory."""

    def __init__(self, fields: dict[str, str], files: Sequence[tuple[str, BinaryIO, int]]) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        self._parts: list[Any] = [head]
        self.length = len(head)
        for filename, fileobj, size in files:
            file_head = (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            self._parts += [file_head, fileobj, b"\r\n"]
            self.length += len(file_head) + size + 2
        self._parts.append(f"--{self.boundary}--\r\n".encode())
        self.length += len(self._parts[-1])
        self.sent = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def read(self, n: int = 1024 * 1024) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                chunk, rest = part[:n], part[n:]
                if rest:
                    self._parts[0] = rest
                else:
                    self._parts.pop(0)
            else:
                chunk = part.read(n)
                if not chunk:
                    self._parts.pop(0)
                    continue
            self.sent += len(chunk)
            return chunk
        return b""


def put_part(url: str, data: bytes) -> str:
    """PUT one part to a presigned S3 URL; returns the part's ETag."""
    parts = urlsplit(url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname or "127.0.0.1", parts.port, timeout=300)
    try:
        conn.request("PUT", f"{parts.path}?{parts.query}", body=data, headers={"Content-Length": str(len(data))})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status >= 300:
            raise ApiError(resp.status, {"error": {"code": "s3_error", "message": body[:500].decode(errors="replace")}})
        return resp.getheader("ETag", "")
    finally:
        conn.close()


class HarkClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.api_key, self.timeout = api_key, timeout

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            # The server may refuse before reading the whole body; its answer may still be there.
            with suppress(BrokenPipeError, ConnectionResetError):
                conn.request(
                    method, path, body=body, headers={"Authorization": f"Bearer {self.api_key}", **(headers or {})}
                )
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("Content-Type", "")
        finally:
            conn.close()

    def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        status, data, _ = self._request(method, path, **kw)
        body = json.loads(data or b"{}")
        if status >= 400:
            raise ApiError(status, body)
        return body

    def _post_files(self, route: str, paths: list[str], fields: dict[str, str]) -> dict[str, Any]:
        with ExitStack() as stack:
            files = [(os.path.basename(p), stack.enter_context(open(p, "rb")), os.path.getsize(p)) for p in paths]
            body = MultipartFile(fields, files)
            return self._json(
                "POST",
                route,
                body=body,
                headers={"Content-Type": body.content_type, "Content-Length": str(body.length)},
            )

    def submit(self, path: str, options: dict[str, Any] | None = None, **fields: str) -> dict[str, Any]:
        """Upload through the API (`fields`: priority, force)."""
        return self._post_files("/v1/jobs", [path], {"options": json.dumps(options or {}), **fields})

    def submit_object(self, s3_key: str, **body: Any) -> dict[str, Any]:
        """A job for an object already in the tenant's inbox."""
        return self._json(
            "POST",
            "/v1/jobs",
            body=json.dumps({"s3_key": s3_key, **body}),
            headers={"Content-Type": "application/json"},
        )

    def submit_direct(self, path: str, options: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
        """Upload straight to S3 through presigned part URLs (for very large files), then complete.
        A recording this tenant already submitted comes back as that job without an upload."""
        size = os.path.getsize(path)
        plan = self._json(
            "POST",
            "/v1/uploads",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"filename": os.path.basename(path), "size": size, "options": options or {}, **body}),
        )
        if "upload_id" not in plan:
            return plan
        etags = []
        with open(path, "rb") as f:
            for part in plan["parts"]:
                etags.append(
                    {"part_number": part["part_number"], "etag": put_part(part["url"], f.read(plan["part_size"]))}
                )
        return self.complete_upload(plan["upload_id"], etags)

    def create_upload(self, filename: str, size: int, **body: Any) -> dict[str, Any]:
        return self._json(
            "POST",
            "/v1/uploads",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"filename": filename, "size": size, **body}),
        )

    def upload_status(self, upload_id: str) -> dict[str, Any]:
        """Parts already uploaded and fresh part URLs, to resume an interrupted direct upload."""
        return self._json("GET", f"/v1/uploads/{upload_id}")

    def jobs(self, **query: str) -> dict[str, Any]:
        """One page of the tenant's jobs, newest first (filters: status, batch_id, limit, cursor)."""
        return self._json("GET", "/v1/jobs" + ("?" + urlencode(query) if query else ""))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/v1/jobs/{job_id}/cancel")

    def complete_upload(self, upload_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return self._json(
            "POST",
            f"/v1/uploads/{upload_id}/complete",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"parts": parts}),
        )

    def submit_batch(self, paths: list[str], options: dict[str, Any] | None = None, **fields: str) -> dict[str, Any]:
        """Many recordings in one request, one job each (`fields`: priority, name, force)."""
        return self._post_files("/v1/batches", paths, {"options": json.dumps(options or {}), **fields})

    def submit_prefix(self, prefix: str, **body: Any) -> dict[str, Any]:
        """One job per object under a prefix of the tenant's inbox."""
        return self._json(
            "POST",
            "/v1/batches",
            body=json.dumps({"prefix": prefix, **body}),
            headers={"Content-Type": "application/json"},
        )

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/batches/{batch_id}")

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def wait(
        self, job_id: str, timeout_s: float = 3600, on_progress: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_progress:
                on_progress(job)
            if job["status"] in FINAL:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s:.0f} s")
            time.sleep(0.5)

    def transcript(self, job_id: str, fmt: str = "txt", **subtitles: float | int | None) -> bytes:
        """One export; `subtitles` (max_line_chars, max_lines, max_cue_s) shape srt/vtt cues."""
        query = urlencode({"format": fmt, **{k: v for k, v in subtitles.items() if v is not None}})
        status, data, _ = self._request("GET", f"/v1/jobs/{job_id}/transcript?{query}")
        if status >= 400:
            raise ApiError(status, json.loads(data or b"{}"))
        return data

    def document(self, job_id: str) -> dict[str, Any]:
        """The transcript as parsed JSON (speakers, turns, utterances)."""
        return json.loads(self.transcript(job_id, "json"))
