"""Per-API-key rate limit on job creation, with Flask-Limiter on Redis storage.

A fixed window per key, counted in Redis (the broker's server, under the broker key prefix), so
the limit holds however many gunicorn workers run. The limit is read from the app's settings at
request time (`HARK_RATE_LIMIT_JOBS` per `HARK_RATE_LIMIT_WINDOW_S`, 0 = off). Every route that
creates jobs counts against one shared window per key: `POST /v1/jobs` and `POST /v1/uploads`
one each (a repeated Idempotency-Key returns the job made first and is not counted), `POST
/v1/batches` one per recording, and a batch too big for what is left is refused whole.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response
from flask_limiter import Limiter, RateLimitExceeded

from web.auth import principal
from web.context import app_settings
from web.errors import ApiError, refusal
from web.job_requests import idempotency_key, job_for_key

log = logging.getLogger("hark.web")

# The window every job-creating route shares (Flask-Limiter's scope of a shared limit).
JOB_SCOPE = "job_creation"


def _key() -> str:
    return str(principal().key_id)


# Storage and prefix come from each app's settings in `init_rate_limits`. Errors reaching Redis are
# swallowed: Redis is also the broker, and while it is away uploads are still accepted (the janitor
# enqueues them later), so the limit opens rather than turning intake away.
limiter = Limiter(key_func=_key, strategy="fixed-window", swallow_errors=True, default_limits=[])


def _job_limit() -> str:
    settings = app_settings()
    return f"{settings.rate_limit_jobs} per {settings.rate_limit_window_s} second"


def _limit_off() -> bool:
    return app_settings().rate_limit_jobs <= 0


def _exempt() -> bool:
    if _limit_off():
        return True
    try:
        key = idempotency_key()
    except ApiError:
        return False  # the view answers the malformed key itself
    return key is not None and job_for_key(key) is not None


class RateLimited(ApiError):
    """The JSON 429 with the seconds to wait (sent as Retry-After by the API's error handler)."""

    def __init__(self, reset_at: float) -> None:
        settings = app_settings()
        # Redis rounds the window's expiry up to whole seconds; a wait never exceeds the window.
        wait = min(settings.rate_limit_window_s, max(1, math.ceil(reset_at - time.time())))
        super().__init__(
            429,
            "rate_limited",
            f"at most {settings.rate_limit_jobs} jobs per {settings.rate_limit_window_s} s per API key; "
            f"retry in {wait} s",
        )
        self.retry_after = wait


# Decorates `POST /v1/jobs`, below its key check (the limit is per key).
limit_job_creation = limiter.shared_limit(_job_limit, scope=JOB_SCOPE, exempt_when=_exempt)
# Decorates `POST /v1/uploads` likewise; it takes no Idempotency-Key, so every start counts.
limit_upload_creation = limiter.shared_limit(_job_limit, scope=JOB_SCOPE, exempt_when=_limit_off)

# Decorates the batch view, below its key check: before the body is read, a key with nothing left
# in its window is refused (a test of one, never deducted here: `deduct_when` answers no), and the
# view counts its recordings with `count_jobs` once it knows them.
check_job_room = limiter.shared_limit(
    _job_limit, scope=JOB_SCOPE, exempt_when=_limit_off, deduct_when=lambda _response: False
)


def count_jobs(count: int) -> None:
    """Count `count` job creations in the window the view was checked against (`check_job_room`);
    past the limit, give them back and raise the 429: a refused batch creates nothing, so it must
    not lock the key out for the rest of the window. Opens while Redis is away, like the rest."""
    for lim in limiter.current_limits:  # empty when the limit is off or Redis was unreachable
        try:
            if limiter.limiter.hit(lim.limit, *lim.request_args, cost=count):
                continue
            limiter.storage.incr(lim.key, lim.limit.get_expiry(), amount=-count)
        except limiter.storage.base_exceptions:
            log.warning("rate limiter unreachable; not limiting", extra={"code": "rate_limit_unavailable"})
            return
        raise RateLimited(lim.reset_at)


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
        reset = limiter.current_limit.reset_at if limiter.current_limit else time.time() + 1
        return refusal(RateLimited(reset))
