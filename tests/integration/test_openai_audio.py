"""The OpenAI-compatible /v1/audio routes, with the `openai` package as the client, against the
running gunicorn app and real workers: every response_format, word timings, a German recording
detected and translated, refusals in OpenAI's error shape, and a long recording sent to /v1/jobs.
The refusals made outside the routes' views (routing, the rate limiter) are checked in-process."""

from __future__ import annotations

import io
import itertools
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import requests
import soundfile

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"

pytestmark = pytest.mark.integration

OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def oai(stack, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack['url']}/v1", api_key=api_key, timeout=300, max_retries=0)


def test_every_response_format(oai, stack, api_key) -> None:
    """The first request runs the job; the others (same file, same options) read the same job."""
    verbose = oai.audio.transcriptions.create(
        model="whisper-1",
        file=SAMPLE.open("rb"),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        temperature=0,
    )
    assert verbose.language == "en" and verbose.duration == pytest.approx(30.0, abs=0.1)
    assert "hello" in verbose.text.lower() and verbose.segments and verbose.words
    assert all(s.start <= s.end for s in verbose.segments)
    words = [w.model_dump() for w in verbose.words]
    assert all(0 <= w["probability"] <= 1 and w["speaker"].startswith("SPEAKER_") for w in words)
    plain = oai.audio.transcriptions.create(model="whisper-1", file=SAMPLE.open("rb"))
    assert plain.text == verbose.text
    text = oai.audio.transcriptions.create(model="whisper-1", file=SAMPLE.open("rb"), response_format="text")
    assert text.strip() == verbose.text
    srt = oai.audio.transcriptions.create(model="whisper-1", file=SAMPLE.open("rb"), response_format="srt")
    assert srt.startswith("1\n00:00:") and "-->" in srt
    vtt = oai.audio.transcriptions.create(model="whisper-1", file=SAMPLE.open("rb"), response_format="vtt")
    assert vtt.startswith("WEBVTT")
    # An ordinary job: listed by the job API like any other.
    jobs = requests.get(
        f"{stack['url']}/v1/jobs?limit=100", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ).json()["jobs"]
    assert any(j["filename"] == "sample.wav" and j["status"] == "done" for j in jobs)


def german_wav() -> bytes:
    sys.path.insert(0, str(ROOT / "bench"))
    from languages_speech import paragraph_speech

    audio, _ = paragraph_speech("de")
    out = io.BytesIO()
    soundfile.write(out, audio, 16000, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_german_is_detected_and_translated(oai) -> None:
    german = german_wav()
    found = oai.audio.transcriptions.create(
        model="whisper-1", file=("sitzung.wav", german), response_format="verbose_json"
    )
    assert found.language == "de" and "haushalt" in found.text.lower()
    english = oai.audio.translations.create(model="whisper-1", file=("sitzung.wav", german))
    assert "next year" in english.text.lower() or "morning" in english.text.lower()


def test_refusals_use_openai_error_shape(oai, stack) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        oai.audio.transcriptions.create(model="whisper-1", file=SAMPLE.open("rb"), temperature=0.4)
    assert err.value.body["param"] == "temperature" and err.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        oai.audio.transcriptions.create(model="no-such-model", file=SAMPLE.open("rb"))
    assert err.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as err:
        oai.audio.transcriptions.create(model="sensevoice-small", file=SAMPLE.open("rb"), extra_body={"hotwords": "Zo"})
    assert "'sensevoice-small' cannot use it" in err.value.body["message"]
    bad_key = openai.OpenAI(base_url=f"{stack['url']}/v1", api_key="hark_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad_key.audio.transcriptions.create(model="whisper-1", file=SAMPLE.open("rb"))
    assert err.value.body["type"] == "authentication_error"
    not_a_form = requests.post(
        f"{stack['url']}/v1/audio/transcriptions", headers={"Authorization": "Bearer x"}, json={}, timeout=30
    )
    assert not_a_form.status_code == 401 and not_a_form.json()["error"]["type"] == "authentication_error"


def test_a_long_recording_is_pointed_at_the_job_api(oai, stack, api_key) -> None:
    """31 minutes of near silence (FLAC keeps it small): a 413 naming the job, which goes on."""
    quiet = (np.random.default_rng(0).standard_normal(31 * 60 * 8000) * 1e-4).astype(np.float32)
    out = io.BytesIO()
    soundfile.write(out, quiet, 8000, format="FLAC")
    with pytest.raises(openai.APIStatusError) as err:
        oai.audio.transcriptions.create(model="whisper-1", file=("archive.flac", out.getvalue()))
    assert err.value.status_code == 413
    job = err.value.body["job"]
    assert job.startswith("/v1/jobs/") and "/v1/jobs" in err.value.body["message"]
    seen = requests.get(f"{stack['url']}{job}", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    assert seen.status_code == 200 and seen.json()["status"] not in ("failed", "cancelled")
    # Done with it: half an hour of near silence would only take the shared workers' time.
    requests.post(f"{stack['url']}{job}/cancel", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)


def test_hotwords_reach_the_engine_through_a_job(oai) -> None:
    """Invented names tiny.en mishears on their own (tests/unit/test_hotwords.py), right when the
    request primes it with them, through the job option and the worker."""
    sys.path.insert(0, str(ROOT / "bench"))
    from synth import speak

    out = io.BytesIO()
    soundfile.write(
        out, speak(("en-us", 50, 150), "The Kestrova project meets with Dr. Fennimax on Tuesday."), 16000, format="WAV"
    )
    primed = oai.audio.transcriptions.create(
        model="whisper-1", file=("names.wav", out.getvalue()), extra_body={"hotwords": "Kestrova,Fennimax"}
    )
    assert "Kestrova" in primed.text and "Fennimax" in primed.text


def test_multi_gives_each_segment_its_language(oai, stack, api_key) -> None:
    """A meeting that switches from German to Spanish, with language 'multi': each segment keeps
    its own language, and the answer validates against the published schema."""
    from web.schemas import TranscriptionVerbose

    sys.path.insert(0, str(ROOT / "bench"))
    from languages_speech import paragraph_speech

    german, _ = paragraph_speech("de")
    spanish, _ = paragraph_speech("es")
    out = io.BytesIO()
    soundfile.write(out, np.concatenate([german, np.zeros(16000, np.float32), spanish]), 16000, format="WAV")
    raw = requests.post(
        f"{stack['url']}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {api_key}"},
        files={"file": ("switch.wav", out.getvalue())},
        data={"model": "whisper-1", "language": "multi", "response_format": "verbose_json"},
        timeout=300,
    )
    assert raw.status_code == 200, raw.text
    verbose = TranscriptionVerbose.model_validate(raw.json())
    languages = [s.language for s in verbose.segments or []]
    assert languages[0] == "de" and languages[-1] == "es" and set(languages) == {"de", "es"}


def test_routing_errors_under_v1_audio_use_openai_shape(settings) -> None:
    """A wrong method or an unknown path fails in routing, before any route's handler is known: under
    /v1/audio/ it still answers in OpenAI's shape (its clients parse nothing else); elsewhere,
    including a path that only starts like it, in Hark's."""
    from web import create_app

    web = create_app(settings).test_client()
    for method, path, status, code in [
        ("GET", "/v1/audio/transcriptions", 405, "method_not_allowed"),
        ("PUT", "/v1/audio/translations", 405, "method_not_allowed"),
        ("POST", "/v1/audio/speech", 404, "not_found"),
        ("POST", "/v1/audio/transcriptionz", 404, "not_found"),
    ]:
        resp = web.open(path, method=method, data=b"x" * 100)
        assert resp.status_code == status, (method, path)
        error = resp.json["error"]
        assert set(error) == OPENAI_ERROR_KEYS, (method, path, error)
        assert error["type"] == "invalid_request_error" and error["code"] == code and error["param"] is None
    for method, path, status, code in [
        ("PUT", "/v1/jobs", 405, "method_not_allowed"),
        ("GET", "/v1/jobz", 404, "not_found"),
        ("POST", "/v1/audiobooks", 404, "not_found"),
    ]:
        resp = web.open(path, method=method)
        assert resp.status_code == status, (method, path)
        assert set(resp.json["error"]) == {"code", "message"} and resp.json["error"]["code"] == code


def test_rate_limit_under_v1_audio_uses_openai_shape(settings) -> None:
    """The real limiter on Redis, a limit of 1 per key: the audio routes share the job-creation
    window, and its 429 is OpenAI's rate_limit_error with Retry-After; /v1/jobs, in the same window,
    keeps Hark's shape."""
    from hark.apikeys import create_key
    from hark.db import session_scope
    from web import create_app

    web = create_app(replace(settings, rate_limit_jobs=1, rate_limit_window_s=60)).test_client()
    with session_scope(settings.database_url) as s:
        key = create_key(s, "tenant-openai-rate")
    auth = {"Authorization": f"Bearer {key}"}
    first = web.post("/v1/audio/transcriptions", headers=auth, json={})  # counted, then refused by the view
    assert first.status_code == 415 and first.json["error"]["type"] == "invalid_request_error"
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        limited = web.post(path, headers=auth, json={})
        assert limited.status_code == 429, path
        error = limited.json["error"]
        assert set(error) == OPENAI_ERROR_KEYS, (path, error)
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limited" and error["message"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
    jobs = web.post("/v1/jobs", headers=auth, data={"options": "{bad"}, content_type="multipart/form-data")
    assert jobs.status_code == 429 and set(jobs.json["error"]) == {"code", "message"}
    assert 1 <= int(jobs.headers["Retry-After"]) <= 60


def test_waiting_requests_per_process_are_bounded(settings, monkeypatch) -> None:
    """Two waiting slots: two admitted requests hold them while they wait for their jobs; a third is
    answered at once, 503 in OpenAI's shape with Retry-After and a pointer to /v1/jobs, without its
    upload being read. Once the two end (one through the real wait, one by an unexpected error)
    their slots are free again and the next request is admitted."""
    from hark.apikeys import create_key
    from hark.db import session_scope
    from web import create_app, openai_audio

    # openai_wait_s=0: the real wait answers at its first look (504, or 200 if a worker was quick).
    app = create_app(replace(settings, openai_max_waiting=2, openai_wait_s=0.0))
    with session_scope(settings.database_url) as s:
        key = create_key(s, "tenant-openai-waiting")
    auth = {"Authorization": f"Bearer {key}"}
    # The admitted requests are held inside their wait until the refusal has been checked.
    in_wait, release, order = threading.Semaphore(0), threading.Event(), itertools.count()
    real_wait = openai_audio._wait_for

    def held_wait(job_id: Any) -> dict[str, Any]:
        n = next(order)
        in_wait.release()
        release.wait(20)
        if n == 0:
            raise RuntimeError("the wait broke")  # an unexpected error must free its slot too
        return real_wait(job_id)

    monkeypatch.setattr(openai_audio, "_wait_for", held_wait)
    answers: dict[str, Any] = {}

    def post(name: str, **kwargs: Any) -> threading.Thread:
        def send() -> None:
            answers[name] = app.test_client().post("/v1/audio/transcriptions", headers=auth, **kwargs)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        return thread

    wav = io.BytesIO()
    soundfile.write(wav, np.random.default_rng(1).standard_normal(8000) * 0.01, 16000, format="WAV")
    # More than web/errors.py drains, so nothing reads it unless the view is let in.
    upload = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        + b"\0" * 200_000
        + b"\r\n--x--\r\n"
    )
    unread = io.BytesIO(upload)
    try:
        admitted = [post(f"admitted{n}", data={"file": (io.BytesIO(wav.getvalue()), "a.wav")}) for n in range(2)]
        for _ in admitted:
            assert in_wait.acquire(timeout=15), "an admitted request did not reach its wait"
        started = time.monotonic()
        refused = post(
            "refused",
            input_stream=unread,
            content_type="multipart/form-data; boundary=x",
            content_length=len(upload),
        )
        refused.join(5)
        assert not refused.is_alive(), "the request beyond the bound was let in to wait"
        assert time.monotonic() - started < 2
        assert all(t.is_alive() for t in admitted)  # refused while both were waiting
    finally:
        release.set()
    resp = answers["refused"]
    assert resp.status_code == 503
    error = resp.json["error"]
    assert set(error) == OPENAI_ERROR_KEYS and error["type"] == "server_error" and error["code"] == "server_busy"
    assert "/v1/jobs" in error["message"] and resp.headers["Retry-After"] == str(openai_audio.BUSY_RETRY_S)
    assert unread.tell() == 0  # refused before its upload was read
    for thread in admitted:
        thread.join(15)
    ended = sorted(answers[f"admitted{n}"].status_code for n in range(2))
    assert ended in ([200, 500], [500, 504]), ended
    # Both slots are free again: a request is let in (and refused by the view itself, not a JSON form).
    later = app.test_client().post("/v1/audio/transcriptions", headers=auth, json={})
    assert later.status_code == 415 and later.json["error"]["code"] == "unsupported_media_type"
    # The admitted requests' job is of no further use; a session stack's workers need not run it.
    web = app.test_client()
    for job in web.get("/v1/jobs?limit=100", headers=auth).json["jobs"]:
        web.post(f"/v1/jobs/{job['id']}/cancel", headers=auth)
