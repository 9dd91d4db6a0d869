"""A small HTTP client for Hark's API, used by the CLI and the demo; it streams uploads from disk."""
from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import urlsplit


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        err = body.get("error") or {}
        super().__init__(f"HTTP {status} {err.get('code', '')}: {err.get('message', body)}")
        self.status, self.code = status, err.get("code")


class MultipartFile:
    """A read()-able multipart/form-data body around an open file, with a known length, so an
    upload of any size is sent in chunks instead of being built in memory."""

    def __init__(self, fields: dict[str, str], filename: str, fileobj: BinaryIO, size: int) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._parts: list[Any] = [head, fileobj, f"\r\n--{self.boundary}--\r\n".encode()]
        self.length = len(head) + size + len(self._parts[2])
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


class HarkClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.api_key, self.timeout = api_key, timeout

    def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            try:
                conn.request(method, path, body=body, headers={"Authorization": f"Bearer {self.api_key}", **(headers or {})})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server refused before reading the whole body; its answer may still be there
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

    def submit(self, path: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            body = MultipartFile({"options": json.dumps(options or {})}, os.path.basename(path), f, size)
            return self._json(
                "POST", "/v1/jobs", body=body,
                headers={"Content-Type": body.content_type, "Content-Length": str(body.length)},
            )

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, timeout_s: float = 3600, on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_progress:
                on_progress(job)
            if job["status"] in ("done", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s:.0f} s")
            time.sleep(0.5)

    def transcript(self, job_id: str, fmt: str = "txt") -> bytes:
        status, data, _ = self._request("GET", f"/v1/jobs/{job_id}/transcript?format={fmt}")
        if status >= 400:
            raise ApiError(status, json.loads(data or b"{}"))
        return data

    def document(self, job_id: str) -> dict[str, Any]:
        """The transcript as parsed JSON (speakers, turns, utterances)."""
        return json.loads(self.transcript(job_id, "json"))
