"""Per-API-key rate limit on job creation: a fixed window counted in Redis.

Every route that creates jobs counts them: POST /v1/jobs and POST /v1/uploads one each, POST
/v1/batches one per recording (a batch is refused whole when it does not fit what is left).
One INCRBY per request on `<prefix>ratelimit:<key id>:<window number>` (expiring with the window)
is shared by every web process, so the limit holds however many gunicorn workers run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from functools import lru_cache

import redis
from flask import current_app

from hark.apikeys import Principal
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


def check_job_creation(principal: Principal, count: int = 1) -> None:
    """Count `count` job creations for the key; raise 429 (with Retry-After) past the limit. With
    count 0 nothing is counted, but a key already at its limit is refused: a batch checks that
    before its body is read, and counts its recordings once it knows them."""
    settings = current_app.extensions["hark.settings"]
    limit, window = settings.rate_limit_jobs, settings.rate_limit_window_s
    if limit <= 0:
        return
    now = time.time()
    slot = int(now // window)
    key = f"{settings.broker_key_prefix}ratelimit:{principal.key_id}:{slot}"
    client = _redis(settings.broker_url)
    pipe = client.pipeline()
    pipe.incrby(key, count)
    pipe.expire(key, window + 1)
    try:
        total = int(pipe.execute()[0])
    except redis.RedisError:
        # Redis is also the broker; while it is away uploads are still accepted (the janitor
        # enqueues them later), so the limit opens rather than turning intake away.
        log.warning("rate limiter unreachable; not limiting", extra={"code": "rate_limit_unavailable"})
        return
    if total > limit or (count == 0 and total >= limit):
        if count:
            # A refused request creates nothing: give back what it would have used, so a batch
            # too big for what is left does not lock the key out for the rest of the window.
            with contextlib.suppress(redis.RedisError):
                client.decrby(key, count)
        raise RateLimited(max(1, int((slot + 1) * window - now + 0.999)), limit, window)
