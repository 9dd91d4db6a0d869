"""API key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>` on every /v1 route."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request

from hark.apikeys import Principal, authenticate
from hark.db import session_scope
from web.errors import ApiError

SCOPE_RANK = {"read": 0, "submit": 1, "admin": 2}


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def require_key(scope: str = "read") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Reject the request before its body is read unless it carries a live key of at least `scope`."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            secret = _presented_key()
            if not secret:
                raise ApiError(401, "missing_api_key", "send an API key as 'Authorization: Bearer <key>'")
            with session_scope(current_app.extensions["hark.settings"].database_url) as s:
                principal = authenticate(s, secret)
            if principal is None:
                raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked")
            if SCOPE_RANK[principal.scope] < SCOPE_RANK[scope]:
                raise ApiError(403, "insufficient_scope", f"this key's scope '{principal.scope}' cannot do this")
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper

    return decorate


def principal() -> Principal:
    return g.principal
