"""The broker settings that make redelivery correct, as the Celery app is really configured."""

from __future__ import annotations

from hark.queues import make_celery
from hark.settings import Settings


def test_delivery_is_at_least_once_and_bounded() -> None:
    cfg = Settings(worker_max_memory_mb=1500)
    conf = make_celery(cfg).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    # A task running longer than the visibility timeout would be handed to a second worker while
    # the first still runs; the janitor's own "dead" deadline is shorter than that timeout.
    assert conf.broker_transport_options["visibility_timeout"] > cfg.janitor_stale_s
    assert conf.worker_max_memory_per_child == 1500 * 1024
    # The janitor sweeps in beat's own thread (worker/celery_app.py), not as a queued message
    # that a busy cpu pool could hold back; only the upload clean-up is a scheduled task.
    assert "janitor" not in conf.beat_schedule
    # A dead holder's lease runs out well within the minute the janitor has to recover its work.
    assert cfg.heartbeat_s * 3 <= cfg.lease_s and cfg.lease_s + cfg.janitor_interval_s <= 45
