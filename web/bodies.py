"""JSON request bodies, capped: the upload limit (gigabytes) is for multipart streams written to S3
piece by piece; a JSON body is parsed in memory, so it gets a limit of its own."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from web.context import app_settings
from web.errors import ApiError


def read_json() -> Any:
    """The request's JSON (None when it is not JSON); 413 past `max_json_bytes`, decided from
    Content-Length before anything is read, or after reading one byte more than the cap of a body
    of unannounced length (chunked)."""
    if not request.is_json:
        return None
    cap = app_settings().max_json_bytes
    if request.content_length is not None and request.content_length > cap:
        raise ApiError(413, "body_too_large", f"JSON bodies are limited to {cap} bytes")
    data = bytearray()
    while len(data) <= cap:
        chunk = request.stream.read(min(1 << 16, cap + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) > cap:
        raise ApiError(413, "body_too_large", f"JSON bodies are limited to {cap} bytes")
    try:
        return json.loads(data)
    except ValueError:
        return None


def json_object() -> dict[str, Any]:
    body = read_json()
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    return body
