"""Prometheus metrics after a real job: the web tier reports queues, job states and stage times from
the shared state; each worker's main process reports what its pool children measured."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.wav"

pytestmark = pytest.mark.integration


def scrape(url: str, token: str | None = None) -> dict[str, list]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        assert response.status == 200
        body = response.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture(scope="module")
def finished_job(client):
    job = client.wait(client.submit(str(SAMPLE))["id"], timeout_s=300)
    assert job["status"] == "done"
    return job


def test_web_metrics_describe_queues_jobs_and_stages(stack, settings, finished_job) -> None:
    for token in (None, "wrong"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(f"{stack['url']}/metrics", token)
        assert refused.value.code == 401
    samples = scrape(f"{stack['url']}/metrics", settings.metrics_token)
    assert {s.labels["queue"] for s in samples["hark_queue_depth"]} == {"cpu", "asr", "embed", "emotion", "webhooks"}
    assert value(samples, "hark_jobs", status="done") >= 1
    assert value(samples, "hark_job_stage_seconds", stage="prepare", quantile="0.5") > 0
    assert value(samples, "hark_job_wall_seconds", quantile="0.95") > 0
    assert value(samples, "hark_audio_seconds_done_24h") >= 30.0


def test_worker_metrics_report_tasks_and_engine_speed(stack, finished_job) -> None:
    model = scrape(f"http://127.0.0.1:{stack['metrics']['worker-model']}/metrics")
    for engine, kind in (("whisper-tiny-en", "asr"), ("resemblyzer", "embed"), ("prosody", "emotion")):
        assert value(model, "hark_engine_rtf_count", engine=engine, kind=kind) >= 1, (engine, kind)
        assert value(model, "hark_engine_audio_seconds_total", engine=engine, kind=kind) > 0
    assert value(model, "hark_task_seconds_count", task="hark.infer", kind="asr", outcome="success") >= 1
    cpu = scrape(f"http://127.0.0.1:{stack['metrics']['worker-cpu']}/metrics")
    assert value(cpu, "hark_task_seconds_count", task="hark.prepare", outcome="success") >= 1
    assert value(cpu, "hark_task_seconds_count", task="hark.reduce", outcome="success") >= 1
