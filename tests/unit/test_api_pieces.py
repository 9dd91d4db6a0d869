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
    assert header.startswith("t=1700000000,v1=") and verify("s3cret", header, body)
    assert not verify("s3cret", header.replace("t=1700000000", "t=1700000001"), body)
    assert not verify("other", header, body) and not verify("s3cret", "garbage", body)


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
        ("https://example.org/hook", True),
        ("http://10.0.0.1:8080/x", True),
        ("ftp://example.org/", False),
        ("/relative", False),
        ("https://", False),
    ],
)
def test_callback_url_validation(url, ok):
    from web.job_requests import parse_callback_url

    if ok:
        assert parse_callback_url(url) == url
    else:
        with pytest.raises(ApiError):
            parse_callback_url(url)
