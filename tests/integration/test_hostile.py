"""Hostile requests against the API as deployed (gunicorn with web/gunicorn_conf.py, real Redis,
PostgreSQL and S3): slow clients without a key, callback URLs into our own network (directly, by
name, and by redirect), a 2 GB JSON body, an oversized upload part. Each attack is refused and the
service keeps answering others."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from hark.apikeys import create_key
from hark.callbacks import Allowance, post
from hark.db import session_scope
from hark.models import Upload
from hark.storage import Storage
from tests.conftest import Processes, settings_env, start_web

pytestmark = pytest.mark.integration

MIB = 1024**2


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Listener:
    """A TCP listener that only counts who connects: proof that nothing reached it."""

    def __init__(self, host: str, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict[str, Listener]]:
    found = {"v4": Listener("127.0.0.1")}
    # Without an IPv6 loopback on this machine the [::1] URL is still refused, just unobserved.
    with contextlib.suppress(OSError):
        found["v6"] = Listener("::1", socket.AF_INET6)
    yield found
    for listener in found.values():
        listener.close()


def internal_urls(listeners: dict[str, Listener]) -> list[str]:
    v4 = listeners["v4"].port
    v6 = listeners["v6"].port if "v6" in listeners else v4
    return [
        f"http://127.0.0.1:{v4}/hook",
        f"http://[::1]:{v6}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        f"http://localhost:{v4}/hook",  # a name that resolves to loopback
    ]


@pytest.fixture(scope="module")
def hostile(settings) -> Iterator[dict]:
    """A web of its own on the session's database, bucket and broker, as deployed, but with no
    callback allow-list (the session's webhook tests allow 127.0.0.1 for their receiver) and a
    small job-creation limit; its own keys, so the limit meets nobody else."""
    # A 3 s header deadline (default 10 s) so the dribblers' cut-off is seen without a long wait.
    cfg = replace(settings, webhook_allow="", rate_limit_jobs=5, rate_limit_window_s=60, web_header_timeout_s=3.0)
    procs = Processes()
    try:
        url = start_web(procs, "web-hostile", settings_env(cfg))
        with session_scope(cfg.database_url) as s:
            keys = [create_key(s, "tenant-hostile") for _ in range(4)]
        yield {"url": url, "keys": keys, "procs": procs, "settings": cfg}
    finally:
        procs.stop()


def _worker_pids(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as children:
        return [int(p) for p in children.read().split()]


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _slow_body_client(host: str, port: int) -> socket.socket:
    """Headers promising 60 MB, then 1 KB of body, then nothing: the attack that stalled the
    sync workers."""
    sock = socket.create_connection((host, port), timeout=5)
    sock.sendall(
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 60000000\r\n\r\n" + b"x" * 1024
    )
    return sock


def _slow_header_client(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=5)
    sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n")
    return sock


def test_slow_clients_without_a_key_do_not_stall_the_api(hostile):
    """50 slow clients: 25 send headers and a trickle of a huge body (each is answered 401 at
    once and disconnected), 25 dribble their headers a byte at a time (each is cut off at the
    header deadline). Meanwhile a keyed client's status poll answers within 1 s every time."""
    host, port = "127.0.0.1", int(hostile["url"].rsplit(":", 1)[1])
    key = hostile["keys"][0]
    job = requests.post(
        f"{hostile['url']}/v1/jobs", headers=auth(key), files={"file": ("n.wav", b"not audio")}, timeout=30
    )
    assert job.status_code == 201, job.text
    job_url = f"{hostile['url']}/v1/jobs/{job.json()['id']}"

    started = time.monotonic()
    bodies = [_slow_body_client(host, port) for _ in range(25)]
    headers = [_slow_header_client(host, port) for _ in range(25)]
    stop = threading.Event()

    def dribble() -> None:
        while not stop.is_set():
            for sock in headers:
                with contextlib.suppress(OSError):  # cut off already
                    sock.send(b"X")
            time.sleep(0.5)

    threading.Thread(target=dribble, daemon=True).start()
    try:
        poller = requests.Session()
        latencies = []
        while time.monotonic() - started < 5:
            t0 = time.monotonic()
            resp = poller.get(job_url, headers=auth(key), timeout=5)
            latencies.append(time.monotonic() - t0)
            assert resp.status_code == 200
            time.sleep(0.05)
        assert max(latencies) < 1.0, f"slowest poll {max(latencies):.2f} s of {len(latencies)}"

        for sock in bodies:  # each was refused before its body was read, and disconnected
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 401") and b"missing_api_key" in answer

        # The header dribblers are cut off by the header deadline (web_header_timeout_s).
        deadline = started + hostile["settings"].web_header_timeout_s + 5
        for sock in headers:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while sock.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            except TimeoutError:
                pytest.fail("a header dribbler was not cut off at the header deadline")
    finally:
        stop.set()
        for sock in bodies + headers:
            sock.close()


def test_callbacks_into_our_network_are_refused(hostile, listeners):
    """Loopback (v4, v6, by name), the metadata service and a private address: each is refused
    when the job is submitted, and nothing connects to the loopback listeners."""
    key = hostile["keys"][1]
    for url in internal_urls(listeners):
        resp = requests.post(
            f"{hostile['url']}/v1/jobs",
            headers=auth(key),
            files={"file": ("a.wav", b"x" * 100)},
            data={"callback_url": url},
            timeout=30,
        )
        assert resp.status_code == 400, (url, resp.text)
        assert resp.json()["error"]["code"] == "invalid_callback_url", url
    # The delivery side checks again with a fresh lookup (a name may resolve elsewhere by then)
    # and connects only to the address it checked.
    for url in internal_urls(listeners):
        status, error = post(url, b"{}", {}, Allowance(), budget_s=3)
        assert status is None and error.startswith("refused:"), (url, error)
    assert all(listener.connections == 0 for listener in listeners.values())


class Redirector:
    """An allowed receiver (the session allows 127.0.0.1 for its webhook tests) that answers
    every POST with a redirect into our network: `/<n>` redirects to the n-th internal URL."""

    def __init__(self, targets: list[str]) -> None:
        redirector = self
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                redirector.hits.append(self.path)
                self.send_response(307)  # 307 keeps the method and body: the worst case
                self.send_header("Location", targets[int(self.path.strip("/"))])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_redirects_into_our_network_are_not_followed(stack, api_key, listeners):
    """Through the session's stack and its webhook worker: each job's callback answers with a
    redirect to one internal URL; the delivery records the redirect as a failure and the
    loopback listeners are never contacted."""
    targets = internal_urls(listeners)
    redirector = Redirector(targets)
    try:
        jobs = []
        for n in range(len(targets)):
            resp = requests.post(
                f"{stack['url']}/v1/jobs",
                headers=auth(api_key),
                files={"file": ("notes.wav", f"not audio {n} {uuid.uuid4()}".encode())},
                data={"callback_url": f"{redirector.url}/{n}", "force": "true"},
                timeout=30,
            )
            assert resp.status_code == 201, resp.text
            jobs.append(resp.json()["id"])
        deadline = time.monotonic() + 90
        pending = set(jobs)
        while pending and time.monotonic() < deadline:
            for jid in list(pending):
                log = requests.get(f"{stack['url']}/v1/jobs/{jid}/webhooks", headers=auth(api_key), timeout=30).json()
                attempts = [a for d in log["deliveries"] for a in d["attempts"]]
                if attempts:
                    assert attempts[0]["status_code"] == 307
                    assert "redirects are not followed" in attempts[0]["error"]
                    pending.discard(jid)
            time.sleep(0.3)
        assert not pending, f"no delivery attempt recorded for {pending}"
        assert set(redirector.hits) == {f"/{n}" for n in range(len(targets))}  # (retries hit it again)
        assert all(listener.connections == 0 for listener in listeners.values())
    finally:
        redirector.server.shutdown()


def _huge_request(host: str, port: int, head: bytes, body_chunk: bytes, total: int) -> bytes:
    """Send `head`, then `body_chunk` repeatedly up to `total` bytes, until the server answers;
    returns the answer (the server may close before the body is all sent)."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(head)
    sent, answer = 0, b""
    try:
        sock.setblocking(False)
        while sent < total:
            try:
                answer += sock.recv(65536)
                break  # the server answered
            except BlockingIOError:
                pass
            try:
                sent += sock.send(body_chunk)
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    finally:
        sock.close()
    return answer


def test_a_2gb_json_body_is_refused_without_growing_the_worker(hostile):
    """A keyed client announcing a 2 GB JSON body, and one sending 200 MB of it chunked (no
    length announced): both are 413 after at most the JSON cap is read, and no web worker's
    memory grows by 50 MiB."""
    host, port = "127.0.0.1", int(hostile["url"].rsplit(":", 1)[1])
    master = next(p.pid for name, p, _ in hostile["procs"].procs if name == "web-hostile")
    before = {pid: _rss_mib(pid) for pid in _worker_pids(master)}
    key = hostile["keys"][2].encode()
    chunk = b'{"filename": "' + b"a" * (64 * 1024 - 20) + b'", '
    announced = (
        b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n"
    )
    answer = _huge_request(host, port, announced, chunk, 2_000_000_000)
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer, answer[:300]

    chunked = (
        b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    answer = _huge_request(host, port, chunked, piece, 200 * MIB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]

    after = {pid: _rss_mib(pid) for pid in _worker_pids(master)}
    grown = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    assert set(after) == set(before), "a web worker died"
    assert max(grown.values()) < 50, grown


def test_an_oversized_part_is_refused(stack, api_key, settings):
    """The part URLs are signed for their exact lengths: a larger PUT is refused by the S3 server.
    And a part that got in anyway (written with the server's own credentials here, as a server
    that ignores the signed length would let it) makes completing the upload a 400."""
    size = 6 * MIB  # parts of 5 MiB (the session's setting) and 1 MiB
    resp = requests.post(
        f"{stack['url']}/v1/uploads",
        headers=auth(api_key),
        json={"filename": f"big-{uuid.uuid4()}.wav", "size": size},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert [p["size"] for p in plan["parts"]] == [5 * MIB, 1 * MIB]
    first, second = plan["parts"]
    refused = requests.put(second["url"], data=b"x" * (5 * MIB), timeout=60)
    assert refused.status_code == 403
    etag1 = requests.put(first["url"], data=b"x" * (5 * MIB), timeout=60).headers["ETag"]

    with session_scope(settings.database_url) as s:
        upload = s.scalar(select(Upload).where(Upload.id == uuid.UUID(plan["upload_id"])))
        key, s3_id = upload.key, upload.s3_upload_id
    storage = Storage(settings)
    etag2 = storage.client.upload_part(
        Bucket=storage.bucket, Key=key, UploadId=s3_id, PartNumber=2, Body=b"y" * (3 * MIB)
    )["ETag"]
    resp = requests.post(
        f"{stack['url']}{plan['complete_url']}",
        headers=auth(api_key),
        json={"parts": [{"part_number": 1, "etag": etag1}, {"part_number": 2, "etag": etag2}]},
        timeout=30,
    )
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "part_size_mismatch", resp.text
    assert not storage.exists(key)


def test_security_headers_and_media_urls(hostile):
    """Console and API carry a Content-Security-Policy that forbids framing, and nosniff; the
    recording's playback URL serves a fixed type as an attachment whatever the uploader claimed."""
    key = hostile["keys"][3]
    console = requests.get(f"{hostile['url']}/console", timeout=30)
    api = requests.get(f"{hostile['url']}/v1/jobs", headers=auth(key), timeout=30)
    for resp in (console, api):
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in console.headers["Content-Security-Policy"]
    assert api.headers["Content-Security-Policy"].startswith("default-src 'none'")

    job = requests.post(
        f"{hostile['url']}/v1/jobs",
        headers=auth(key),
        files={"file": ("page.html", b"<html><script>alert(1)</script></html>", "text/html")},
        timeout=30,
    ).json()
    media = requests.get(f"{hostile['url']}/v1/jobs/{job['id']}/media", headers=auth(key), timeout=30).json()
    got = requests.get(media["url"], timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"].startswith("attachment")


def test_batches_and_uploads_are_rate_limited(hostile, settings):
    """The job-creation limit (5 a minute here) counts direct uploads one each and a batch one per
    recording; a batch too big for what is left is refused whole and costs nothing."""
    with session_scope(settings.database_url) as s:
        key = create_key(s, "tenant-hostile")
    url = hostile["url"]

    def upload() -> requests.Response:
        return requests.post(
            f"{url}/v1/uploads", headers=auth(key), json={"filename": "a.wav", "size": 100}, timeout=30
        )

    def batch(n: int) -> requests.Response:
        files = [("file", (f"{i}.wav", f"x{i}{uuid.uuid4()}".encode())) for i in range(n)]
        return requests.post(f"{url}/v1/batches", headers=auth(key), files=files, timeout=30)

    assert batch(3).status_code == 201  # 3 of 5
    refused = batch(3)  # 6 > 5: refused whole
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert [upload().status_code for _ in range(2)] == [201, 201]  # 5 of 5: the refusal cost nothing
    limited = upload()
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert batch(1).status_code == 429  # at the limit: refused before the files are read
    assert json.loads(limited.text)["error"]["message"]


def test_a_refused_unread_body_closes_the_connection_and_says_so(hostile):
    """An error answered without reading a large body closes the connection afterwards; the
    response must say `Connection: close`, or a keep-alive client sends its next request into the
    closing socket (seen as 'server disconnected without a response')."""
    with requests.Session() as session:
        refused = session.post(
            f"{hostile['url']}/v1/jobs", data=b"x" * (256 * 1024), headers={"Content-Type": "multipart/form-data"}
        )
        assert refused.status_code == 401
        assert refused.headers.get("Connection", "").lower() == "close"
        # The session opens a fresh connection for the next request and it is answered.
        assert session.get(f"{hostile['url']}/healthz").status_code == 200
