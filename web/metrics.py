"""Prometheus `/metrics` of the web tier: what only the shared state can tell — queue depth per
queue, jobs per status, failures per reason code, stage durations and end-to-end time of recently
finished jobs. Computed from Redis and PostgreSQL at scrape time, so any number of web processes
report the same truth and none keeps counters of its own. Worker processes serve their own
metrics (task durations, engine real-time factors; see worker/metrics.py).

All tenants' counts, and several aggregate queries per scrape: served only to a scraper presenting
the `metrics_token` setting as a bearer token; with no token set, /metrics does not exist (404)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import text

from hark.db import engine_for
from hark.queues import queue_depths
from web.context import app_settings
from web.errors import ApiError

bp = Blueprint("metrics", __name__)

RECENT = "interval '24 hours'"
STAGES = ("prepare", "asr", "embed", "emotion", "reduce")


def _authorised(token: str) -> bool:
    presented = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    settings = app_settings()
    if not settings.metrics_token:
        raise ApiError(404, "not_found", "not found")
    if not _authorised(settings.metrics_token):
        raise ApiError(401, "missing_metrics_token", "send the metrics token as 'Authorization: Bearer <token>'")
    registry = CollectorRegistry()
    depth = Gauge("hark_queue_depth", "Tasks waiting in each queue", ["queue"], registry=registry)
    jobs = Gauge("hark_jobs", "Jobs per status", ["status"], registry=registry)
    failures = Gauge("hark_job_failures", "Failed jobs per reason code (all time)", ["reason"], registry=registry)
    stage = Gauge(
        "hark_job_stage_seconds",
        "Per-stage seconds of jobs finished in the last 24 h",
        ["stage", "quantile"],
        registry=registry,
    )
    wall = Gauge(
        "hark_job_wall_seconds",
        "Upload-to-done seconds of jobs finished in the last 24 h",
        ["quantile"],
        registry=registry,
    )
    audio = Gauge("hark_audio_seconds_done_24h", "Seconds of audio in jobs done in the last 24 h", registry=registry)

    for queue, n in queue_depths(current_app.extensions["hark.celery"], settings.broker_key_prefix).items():
        depth.labels(queue).set(n)
    with engine_for(settings.database_url).connect() as conn:
        for status, n in conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status")):
            jobs.labels(status).set(n)
        for reason, n in conn.execute(
            text("SELECT error_code, count(*) FROM jobs WHERE status = 'failed' GROUP BY error_code")
        ):
            failures.labels(reason or "unknown").set(n)
        recent = f"status = 'done' AND finished_at > now() - {RECENT}"
        for name in STAGES:
            row = conn.execute(
                text(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v), percentile_cont(0.95) WITHIN GROUP "
                    "(ORDER BY v) "
                    f"FROM (SELECT (timings->>:key)::float AS v FROM jobs WHERE {recent}) t WHERE v IS NOT NULL"
                ),
                {"key": f"{name}_s"},
            ).one()
            if row[0] is not None:
                stage.labels(name, "0.5").set(row[0])
                stage.labels(name, "0.95").set(row[1])
        row = conn.execute(
            text(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v), percentile_cont(0.95) WITHIN GROUP "
                "(ORDER BY v), "
                f"coalesce(sum(d), 0) FROM (SELECT extract(epoch FROM finished_at - created_at) AS v, duration_s AS d "
                f"FROM jobs WHERE {recent}) t"
            )
        ).one()
        if row[0] is not None:
            wall.labels("0.5").set(row[0])
            wall.labels("0.95").set(row[1])
        audio.set(row[2])
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
