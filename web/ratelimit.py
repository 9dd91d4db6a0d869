"""Per-API-key rate limit on job creation, with Flask-Limiter on Redis storage.

A fixed window per key, counted in Redis (the broker's server, under the broker key prefix), so
the limit holds however many gunicorn workers run. The limit is read from the app's settings at
request time (`HARK_RATE_LIMIT_JOBS` per `HARK_RATE_LIMIT_WINDOW_S`, 0 = off); a repeated
Idempotency-Key returns the job made first and is not counted.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response
from flask_limiter import Limiter, RateLimitExceeded

from web.auth import principal
from web.context import app_settings
from web.errors import ApiError, error_response
from web.job_requests import idempotency_key, job_for_key


def _key() -> str:
    return str(principal().key_id)


# Storage and prefix come from each app's settings in `init_rate_limits`. Errors reaching Redis are
# swallowed: Redis is also the broker, and while it is away uploads are still accepted (the janitor
# enqueues them later), so the limit opens rather than turning intake away.
limiter = Limiter(key_func=_key, strategy="fixed-window", swallow_errors=True, default_limits=[])


def _job_limit() -> str:
    settings = app_settings()
    return f"{settings.rate_limit_jobs} per {settings.rate_limit_window_s} second"


def _exempt() -> bool:
    if app_settings().rate_limit_jobs <= 0:
        return True
    try:
        key = idempotency_key()
    except ApiError:
        return False  # the view answers the malformed key itself
    return key is not None and job_for_key(key) is not None


# Decorates the job-creation view, below its key check (the limit is per key).
limit_job_creation = limiter.limit(_job_limit, exempt_when=_exempt)


class _OneLine(logging.Filter):
    """Flask-Limiter logs a traceback for every request while Redis is away; one line says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


logging.getLogger("flask-limiter").addFilter(_OneLine())


def init_rate_limits(app: Flask) -> None:
    settings = app.extensions["hark.settings"]
    app.config["RATELIMIT_STORAGE_URI"] = settings.broker_url
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_timeout": 2, "socket_connect_timeout": 2}
    app.config["RATELIMIT_KEY_PREFIX"] = f"{settings.broker_key_prefix}ratelimit"
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _limited(exc: RateLimitExceeded) -> Response:
        settings = app_settings()
        reset = limiter.current_limit.reset_at if limiter.current_limit else time.time() + 1
        # Redis rounds the window's expiry up to whole seconds; a wait never exceeds the window.
        wait = min(settings.rate_limit_window_s, max(1, math.ceil(reset - time.time())))
        response = error_response(
            429,
            "rate_limited",
            f"at most {settings.rate_limit_jobs} jobs per {settings.rate_limit_window_s} s per API key; "
            f"retry in {wait} s",
        )
        response.headers["Retry-After"] = str(wait)
        return response
