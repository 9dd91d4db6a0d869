"""Hark workers: the Celery app, its tasks, speech engines and clustering."""
