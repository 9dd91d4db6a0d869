"""Per-API-key rate limit on job creation: a fixed window counted in Redis.

One INCR per request on `<prefix>ratelimit:<key id>:<window number>` (expiring with the window)
is shared by every web process, so the limit holds however many gunicorn workers run.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis

from hark.apikeys import Principal
from web.context import app_settings
from web.errors import ApiError

log = logging.getLogger("hark.web")


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class RateLimited(ApiError):
    def __init__(self, retry_after: int, limit: int, window_s: int) -> None:
        super().__init__(
            429, "rate_limited", f"at most {limit} jobs per {window_s} s per API key; retry in {retry_after} s"
        )
        self.retry_after = retry_after


def check_job_creation(principal: Principal) -> None:
    """Count one job creation for the key; raise 429 (with Retry-After) past the limit."""
    settings = app_settings()
    limit, window = settings.rate_limit_jobs, settings.rate_limit_window_s
    if limit <= 0:
        return
    now = time.time()
    slot = int(now // window)
    key = f"{settings.broker_key_prefix}ratelimit:{principal.key_id}:{slot}"
    client = _redis(settings.broker_url)
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, window + 1)
    try:
        count = int(pipe.execute()[0])
    except redis.RedisError:
        # Redis is also the broker; while it is away uploads are still accepted (the janitor
        # enqueues them later), so the limit opens rather than turning intake away.
        log.warning("rate limiter unreachable; not limiting", extra={"code": "rate_limit_unavailable"})
        return
    if count > limit:
        raise RateLimited(max(1, int((slot + 1) * window - now + 0.999)), limit, window)
