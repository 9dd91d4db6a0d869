"""API key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>` on every /v1 route."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import Session

from hark.apikeys import Principal, authenticate, hash_key
from hark.db import read_sessions
from web.context import app_settings
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
            known: KeyCache = current_app.extensions["hark.keys"]
            principal = known.get(secret)
            if principal is None:
                principal = authenticate(read_session(), secret)
                if principal is None:
                    raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked")
                known.put(secret, principal)
            if SCOPE_RANK[principal.scope] < SCOPE_RANK[scope]:
                raise ApiError(403, "insufficient_scope", f"this key's scope '{principal.scope}' cannot do this")
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper

    return decorate


class KeyCache:
    """Live keys this process checked in the last `ttl_s` seconds. A poller asks many times a
    second with one key; looking the key up once per `ttl_s` instead of on every request takes
    a query off each poll. The price is that a revoked key keeps working in a process for at most
    `ttl_s` more (setting `auth_cache_s`, 0 switches the cache off). Unknown keys are never cached.
    Keys are held by their hash, so the secrets are not kept in memory."""

    def __init__(self, ttl_s: float, size: int = 10_000) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, secret: str) -> Principal | None:
        if self.ttl_s <= 0:
            return None
        entry = self._entries.get(hash_key(secret))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, secret: str, principal: Principal) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.size:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= self.size:
                self._entries.clear()
        self._entries[hash_key(secret)] = (time.monotonic() + self.ttl_s, principal)


def principal() -> Principal:
    return g.principal


def read_session() -> Session:
    """This request's read-only session, opened on first use and closed when the request ends
    (`close_read_session`): the key check and a status read share one connection checkout."""
    session = g.get("hark_read_session")
    if session is None:
        session = g.hark_read_session = read_sessions(app_settings().database_url)()
    return session


def close_read_session(_exc: BaseException | None = None) -> None:
    session = g.pop("hark_read_session", None)
    if session is not None:
        session.close()
