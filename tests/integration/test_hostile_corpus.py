"""A night's archive holds broken files. This corpus of hostile and broken inputs, generated here, goes
through the real web app and workers: each one ends as a 4xx answer or a failed job with its own
reason code (never a generic stage error, a crash loop or a hang), leaves no half-written canonical
audio behind, the same workers then finish a real job, and no worker process grew past a stated
memory limit."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from hark.pcm_store import pcm_prefix
from hark.storage import Storage
from tests.audiofiles import MALFORMED_HEADERS, encode, read_wav, tone, wav_bytes

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"
# Peak resident memory any worker process may reach while eating the corpus (the model process holds
# Whisper and the speaker model; the prepare process decodes in fixed-size blocks).
WORKER_RSS_LIMIT_MIB = 1536

pytestmark = pytest.mark.integration


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def encoded(fmt: str, samples: np.ndarray, rate: int = 16000):
    def make(tmp: Path) -> bytes:
        return encode(samples, rate, tmp / f"src.{fmt}", fmt).read_bytes()

    return make


def cut(make, fraction: float):
    def made(tmp: Path) -> bytes:
        whole = make(tmp)
        return whole[: int(len(whole) * fraction)]

    return made


def float_wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def speech_clip(seconds: float = 4.0) -> np.ndarray:
    samples, rate = read_wav(SAMPLE)
    return samples[int(6.5 * rate) : int((6.5 + seconds) * rate)]


def video_without_audio(tmp: Path) -> bytes:
    path = tmp / "silent-film.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path.read_bytes()


def zip_of_wav(tmp: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("meeting.wav", wav_bytes(tone(2.0)))
    return buf.getvalue()


def tar_gz_of_wav(tmp: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = wav_bytes(tone(2.0))
        info = tarfile.TarInfo("meeting.wav")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def png(tmp: Path) -> bytes:
    path = tmp / "picture.png"
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path.read_bytes()


rng = np.random.default_rng(11)
NAN = speech_clip(1.0).copy()
NAN[100:200] = np.nan
INF = speech_clip(1.0).copy()
INF[5000] = np.inf

# name → (make bytes, expected reason code of the failed job)
FAILING: dict[str, tuple] = {
    "random-1k.wav": (lambda tmp: rng.bytes(1024), "undecodable_audio"),
    "random-8m.mp3": (lambda tmp: rng.bytes(8 * 1024 * 1024), "undecodable_audio"),
    "page.wav": (
        lambda tmp: b"<!doctype html><html><body><h1>404 Not Found</h1></body></html>" * 40,
        "undecodable_audio",
    ),
    "notes.m4a": (
        lambda tmp: json.dumps({"meeting": "notes", "items": list(range(500))}).encode(),
        "undecodable_audio",
    ),
    "archive.wav": (zip_of_wav, "undecodable_audio"),
    "archive.tar.gz.flac": (tar_gz_of_wav, "undecodable_audio"),
    "gzip.ogg": (lambda tmp: gzip.compress(wav_bytes(tone(2.0))), "undecodable_audio"),
    "id3-only.mp3": (lambda tmp: b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10, "undecodable_audio"),
    "riff-header-only.wav": (lambda tmp: wav_bytes(tone(1.0))[:40], "undecodable_audio"),
    "picture.png.wav": (png, "no_audio_stream"),
    "silent-film.mp4": (video_without_audio, "no_audio_stream"),
    "claims-100h.wav": (
        lambda tmp: wav_bytes(tone(1.0, 8000), rate=8000, bits=8, declared_data=100 * 3600 * 8000),
        "truncated_audio",
    ),
    "mid-sample.wav": (lambda tmp: wav_bytes(tone(4.0))[:-1], "truncated_audio"),
    "cut-half.wav": (lambda tmp: wav_bytes(tone(6.0))[: 16000 * 6], "truncated_audio"),
    "cut.ogg": (cut(encoded("ogg", tone(10.0).astype(np.float32) / 32768), 2 / 3), "truncated_audio"),
    "cut.mp3": (cut(encoded("mp3", tone(20.0).astype(np.float32) / 32768), 0.3), "truncated_audio"),
    "cut.flac": (cut(encoded("flac", tone(20.0).astype(np.float32) / 32768), 0.3), "truncated_audio"),
    "cut.m4a": (cut(encoded("m4a", tone(20.0).astype(np.float32) / 32768), 0.5), "undecodable_audio"),
    "zero-samples.wav": (lambda tmp: wav_bytes(tone(0.0)), "no_audio"),
    "one-ms.wav": (lambda tmp: wav_bytes((speech_clip(0.001) * 32767).astype(np.int16)), "no_speech"),
    "silence.wav": (lambda tmp: wav_bytes(np.zeros(16000 * 8, np.int16)), "no_speech"),
    "silence-named.mp3": (encoded("ogg", silence(5.0)), "no_speech"),
    "silence-named.m4a": (encoded("flac", silence(5.0)), "no_speech"),
    "hum-only.flac": (encoded("flac", tone(6.0).astype(np.float32) / 32768 * 0.2), "no_speech"),
    "nan.wav": (lambda tmp: float_wav(NAN), "invalid_samples"),
    "inf.wav": (lambda tmp: float_wav(INF), "invalid_samples"),
    "sixty-channels.wav": (lambda tmp: wav_bytes(tone(1.0, channels=60), channels=60), "too_many_channels"),
    "384khz.wav": (lambda tmp: wav_bytes(tone(0.5, 384000), rate=384000), "sample_rate_too_high"),
    "8bit-silence.wav": (lambda tmp: wav_bytes(np.zeros(16000 * 3, np.int16), bits=8), "no_speech"),
    "192khz-silence.wav": (lambda tmp: wav_bytes(np.zeros(192000 * 2, np.int16), rate=192000), "no_speech"),
}


# A broken header of each container the decoder accepts (tests/audiofiles.py), with its own code.
FAILING.update(MALFORMED_HEADERS)


@pytest.fixture(scope="module")
def corpus_client(settings, stack):
    from hark.apikeys import create_key
    from hark.client import HarkClient
    from hark.db import session_scope

    with session_scope(settings.database_url) as s:
        return HarkClient(stack["url"], create_key(s, "hostile"), timeout=120)


def test_the_corpus_is_large_enough() -> None:
    assert len(FAILING) + len(REFUSED) >= 30


@pytest.mark.parametrize("name", sorted(FAILING))
def test_hostile_file_fails_with_its_code(corpus_client, settings, tmp_path, name):
    make, code = FAILING[name]
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    final = corpus_client.wait(corpus_client.submit(str(path), force="true")["id"], timeout_s=120)
    assert final["status"] == "failed", final
    assert (final["error"]["code"], name) == (code, name), final["error"]
    assert final["error"]["message"]
    assert not list(Storage(settings).objects(pcm_prefix(final["id"])))


def _multipart(fields: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "hostileboundary"
    body = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# name → (method, body, content type, expected HTTP status, expected error code)
REFUSED: dict[str, tuple] = {
    "empty file": ("POST", *_multipart([("file", "empty.wav", b"")]), 400, "empty_upload"),
    "no file field": ("POST", *_multipart([("options", None, b"{}")]), 400, "missing_file"),
    "two files": (
        "POST",
        *_multipart([("file", "a.wav", wav_bytes(tone(1.0))), ("file", "b.wav", wav_bytes(tone(1.0)))]),
        400,
        "too_many_files",
    ),
    "options not JSON": (
        "POST",
        *_multipart([("options", None, b"{nope"), ("file", "a.wav", wav_bytes(tone(1.0)))]),
        400,
        "invalid_options",
    ),
    "plain text body": ("POST", b"just some text", "text/plain", 415, "unsupported_media_type"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_request_is_refused_with_json(corpus_client, name):
    method, body, content_type, status, code = REFUSED[name]
    got, data, mime = corpus_client._request(method, "/v1/jobs", body=body, headers={"Content-Type": content_type})
    assert got == status, data[:300]
    assert mime.startswith("application/json") and json.loads(data)["error"]["code"] == code


def _peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and of each of its children, the largest."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    peaks = []
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks)


def test_after_the_corpus_workers_still_work_within_their_memory(corpus_client, stack, tmp_path):
    path = encode(speech_clip(6.0), 16000, tmp_path / "after.wav", "wav")
    final = corpus_client.wait(corpus_client.submit(str(path), force="true")["id"], timeout_s=180)
    assert final["status"] == "done", final
    for name, proc, _ in stack["procs"].procs:
        if name.startswith("worker-"):
            assert proc.poll() is None, f"{name} died"
            peak = _peak_rss_mib(proc.pid)
            assert peak < WORKER_RSS_LIMIT_MIB, f"{name} reached {peak:.0f} MiB"
