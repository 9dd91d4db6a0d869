"""Small pure pieces of the API: webhook signatures, list cursors, callback URL checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from hark.webhooks import sign, verify
from web.errors import ApiError


def test_signature_round_trip_and_tamper():
    body = b'{"event": "job.done"}'
    header = sign("s3cret", 1700000000, body)
    at = 1700000000 + 10
    assert header.startswith("t=1700000000,v1=") and verify("s3cret", header, body, now=at)
    assert not verify("s3cret", header.replace("t=1700000000", "t=1700000001"), body, now=at)
    assert not verify("other", header, body, now=at) and not verify("s3cret", "garbage", body, now=at)


def test_signature_replay_window():
    """A delivery captured and sent again later is refused once its timestamp is too old."""
    body = b'{"event": "job.done"}'
    header = sign("s3cret", 1700000000, body)
    assert verify("s3cret", header, body, now=1700000000 + 299)
    assert not verify("s3cret", header, body, now=1700000000 + 301)
    assert not verify("s3cret", header, body, now=1700000000 - 301)
    assert verify("s3cret", sign("s3cret", int(__import__("time").time()), body), body)  # default: now


def test_rotation_signs_with_both_secrets():
    """During a rotation's grace period each delivery carries a signature under each secret, and
    a receiver holding either one accepts it."""
    body = b"{}"
    header = sign(["new", "old"], 1700000000, body)
    assert header.count("v1=") == 2
    assert verify("new", header, body, now=1700000000) and verify("old", header, body, now=1700000000)
    assert not verify("other", header, body, now=1700000000)
    assert not verify("new", header + ",t=1700000001", body, now=1700000000)  # one timestamp only


def test_cursor_round_trip_and_rejects_garbage():
    from web.job_actions import decode_cursor, encode_cursor

    when, jid = datetime(2026, 11, 23, 7, 0, 1, 123456, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(when, jid)) == (when, jid)
    with pytest.raises(ApiError) as err:
        decode_cursor("bm90IGpzb24")
    assert err.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    "url,ok",
    [
        ("https://93.184.215.14/hook", True),
        ("http://[2606:4700::1]:8080/x", True),
        ("http://10.0.0.1:8080/x", False),
        ("http://172.16.3.4/", False),
        ("http://192.168.1.1/", False),
        ("http://100.64.0.1/", False),  # shared address space (carrier NAT)
        ("http://127.0.0.1/", False),
        ("http://[::1]/", False),
        ("http://[::ffff:127.0.0.1]/", False),
        ("http://[fe80::1]/", False),
        ("http://169.254.169.254/latest/meta-data/", False),
        ("http://224.0.0.1/", False),
        ("http://240.0.0.1/", False),
        ("http://0.0.0.0/", False),
        ("http://2130706433/", False),  # 127.0.0.1 as one decimal number
        ("http://localhost:6379/", False),
        ("http://user:pw@93.184.215.14/", False),
        ("ftp://example.org/", False),
        ("/relative", False),
        ("https://", False),
    ],
)
def test_callback_url_validation(url, ok):
    from hark.callbacks import Allowance, CallbackRefused, resolve

    if ok:
        assert resolve(url, Allowance()).address.strip("[]") in url
    else:
        with pytest.raises(CallbackRefused):
            resolve(url, Allowance())


def test_callback_allow_list():
    from hark.callbacks import Allowance, CallbackRefused, resolve

    allow = Allowance.parse("10.1.0.0/16, hooks.internal")
    assert resolve("http://10.1.2.3/x", allow).address == "10.1.2.3"
    with pytest.raises(CallbackRefused):
        resolve("http://10.2.0.1/x", allow)
    assert resolve("http://localhost/", Allowance.parse("localhost")).address in ("127.0.0.1", "::1")


def test_a_webhook_try_has_one_time_budget():
    """A receiver that answers one byte at a time cannot stretch a delivery past its budget (a
    per-read timeout alone would let it run for as long as it keeps trickling)."""
    import socket
    import threading
    import time

    from hark.callbacks import Allowance, post

    server = socket.create_server(("127.0.0.1", 0))

    def trickle() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 50:
            try:
                conn.send(bytes([byte]))
            except OSError:
                return
            time.sleep(0.1)

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    status, error = post(
        f"http://127.0.0.1:{server.getsockname()[1]}/hook", b"{}", {}, Allowance.parse("127.0.0.1/32"), 0.8
    )
    assert (status, error) == (None, "timed out")
    assert time.monotonic() - started < 1.5
    server.close()
