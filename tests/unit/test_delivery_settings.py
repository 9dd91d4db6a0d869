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
    assert conf.beat_schedule["janitor"]["schedule"] == cfg.janitor_interval_s
