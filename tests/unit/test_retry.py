"""Retry spacing of job tasks: exponential, capped, never immediate (equal jitter)."""

from __future__ import annotations

import random

from worker.tasks.common import retry_delay


def test_retry_delays_grow_stay_at_least_half_and_are_capped() -> None:
    random.seed(7)
    for n in range(8):
        full = min(60.0, 2.0 * 2**n)
        delays = [retry_delay(n) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 4  # jittered, not in step
    assert sum(min(60.0, 2.0 * 2**n) / 2 for n in range(6)) >= 60  # six retries ride out a minute at least
