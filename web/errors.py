"""Every error leaves the API as {"error": {"code": ..., "message": ...}} with a fitting status,
except under the OpenAI-compatible routes' prefix, where it takes OpenAI's shape (web/openai_audio.py)."""

from __future__ import annotations

import logging

import psycopg
from flask import Flask, Response, has_request_context, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from web.serving import close_after_response, read_deadline

log = logging.getLogger("hark.web")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# A request refused before its body was read (bad key, wrong type) still has that body in flight.
# A small one is read (within DRAIN_SECONDS), so the client sees the JSON error instead of a reset
# connection; anything larger, or slower, is not read at all: the connection closes after the
# response. Reading a stranger's body is work a stranger should not be able to order.
DRAIN_LIMIT = 64 * 1024
DRAIN_SECONDS = 1.0

# The OpenAI-compatible routes' prefix: OpenAI's clients parse only OpenAI's error shape.
OPENAI_PREFIX = "/v1/audio"


def drain_body() -> None:
    environ = request.environ
    length = request.content_length
    if length is None and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return  # no body
    if length is None or length > DRAIN_LIMIT:
        close_after_response(environ)
        return
    try:
        with read_deadline(environ, DRAIN_SECONDS):
            while request.stream.read(1 << 16):
                pass
    except Exception:  # noqa: BLE001 - best effort; the error response matters more
        close_after_response(environ)


def error_response(status: int, code: str, message: str) -> Response:
    if has_request_context():
        drain_body()
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def refusal(exc: ApiError) -> Response:
    """The response for `exc` (with its Retry-After, if any) in the shape the request's clients
    parse. Chosen by path, not by blueprint: a wrong method or path fails in routing, before any
    blueprint is known, and the rate limit's 429 handler is found before a blueprint's would be."""
    if request.path.startswith(OPENAI_PREFIX + "/"):
        from web.openai_audio import openai_error  # imported here: that module imports this one

        return openai_error(exc)
    response = error_response(exc.status, exc.code, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return refusal(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return refusal(ApiError(exc.code or 500, code, exc.description or exc.name))

    @app.errorhandler(OperationalError)
    @app.errorhandler(psycopg.OperationalError)
    def _db_down(exc: Exception) -> Response:
        log.error("database unavailable: %s", exc)
        return refusal(ApiError(503, "database_unavailable", "the database is not reachable; retry later"))

    @app.errorhandler(TimeoutError)
    def _client_timeout(exc: TimeoutError) -> Response:
        close_after_response(request.environ)
        return refusal(ApiError(408, "request_timeout", "the request body stopped arriving"))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return refusal(ApiError(500, "internal_error", "unexpected server error"))
