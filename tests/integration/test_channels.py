"""Speakers per channel: a generated stereo call (two espeak voices, one per channel, with one
real overlap where the customer talks over the agent) through the whole pipeline with
`channels: separate`: the channel names are the speakers, the DER against the generated
reference is at most 5 % (collar 0, overlap scored), and the overlap is real overlap in the
conversation analytics."""

from __future__ import annotations

import io
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile
from sqlalchemy import text

from hark.db import session_scope
from tests.der import der

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

pytestmark = pytest.mark.integration
RATE = 16000

# (channel, sentence, gap before it: negative = starts before the other channel's turn ends)
SCRIPT = [
    (0, "Good morning, thanks for calling, how can I help you today?", 0.5),
    (1, "Hi, I was charged twice for my order last week.", 0.6),
    (0, "I am sorry to hear that, let me look at your account.", 0.5),
    (1, "Wait, it was the order from Tuesday, not Monday.", -1.0),
    (0, "Thanks, I can see both charges now and I will refund one.", 0.7),
    (1, "Great, that answers my question completely.", 0.5),
]


def stereo_call() -> tuple[bytes, list[tuple[float, float, str]]]:
    from synth import VOICES, require_espeak, speak

    require_espeak()
    names = ("Agent", "Customer")
    voices = (VOICES[0], VOICES[1])
    pieces, reference, t = [], [], 0.0
    for channel, sentence, gap in SCRIPT:
        audio = speak(voices[channel], sentence)
        start = max(0.0, t + gap)
        pieces.append((channel, int(round(start * RATE)), audio))
        reference.append((start, start + audio.size / RATE, names[channel]))
        t = max(t, start + audio.size / RATE)
    total = int(np.ceil((t + 0.5) * RATE))
    stereo = np.zeros((total, 2), dtype=np.float32)
    for channel, at, audio in pieces:
        stereo[at : at + audio.size, channel] += audio
    buf = io.BytesIO()
    soundfile.write(buf, stereo, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue(), reference


def test_stereo_call_one_speaker_per_channel(stack, api_key, client, settings):
    call, reference = stereo_call()
    resp = requests.post(
        f"{stack['url']}/v1/jobs",
        headers={"Authorization": f"Bearer {api_key}"},
        files={"file": ("call.wav", call, "audio/wav")},
        data={"options": '{"channels": "separate", "channel_names": ["Agent", "Customer"]}', "force": "true"},
        timeout=120,
    )
    assert resp.status_code == 201, resp.text
    job = client.wait(resp.json()["id"], timeout_s=300)
    assert job["status"] == "done", job
    assert job["duration_s"] == pytest.approx(reference[-1][1] + 0.5, abs=0.05)  # the call's length, once
    doc = client.document(job["id"])
    assert {sp["label"] for sp in doc["speakers"]} == {"Agent", "Customer"}
    hypothesis = [(t["start"], t["end"], t["speaker"]) for t in doc["turns"]]
    assert der(reference, hypothesis) <= 0.05
    # Each channel's words are transcribed from that channel alone.
    said = {
        who: " ".join(u["text"] for u in doc["utterances"] if u["speaker"] == who).lower()
        for who in ("Agent", "Customer")
    }
    assert "account" in said["Agent"] and "twice" in said["Customer"], said
    assert "account" not in said["Customer"] and "twice" not in said["Agent"], said
    # The customer talking over the agent is real overlap: an interruption in the analytics.
    with session_scope(settings.database_url) as s:
        rows = {
            r.speaker: r
            for r in s.execute(
                text("SELECT * FROM analytics.conversation WHERE job_id = :j"), {"j": uuid.UUID(job["id"])}
            )
        }
    assert rows["Customer"].interruptions_made == 1 and rows["Agent"].interruptions_suffered == 1
    assert rows["Customer"].overlap_s == pytest.approx(1.0, abs=0.3)


def test_channel_options_are_validated(stack, api_key):
    for options, fragment in (
        ('{"channel_names": ["A", "B"]}', "channels=separate"),
        ('{"channels": "split"}', "channels"),
        ('{"channels": "separate", "channel_names": ["A", "A"]}', "different"),
    ):
        resp = requests.post(
            f"{stack['url']}/v1/jobs",
            headers={"Authorization": f"Bearer {api_key}"},
            files={"file": ("x.wav", b"RIFF0000WAVE")},
            data={"options": options},
            timeout=30,
        )
        assert resp.status_code == 400 and fragment in resp.json()["error"]["message"], resp.text
