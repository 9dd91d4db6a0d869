"""The `hark` command line against the running stack, as a user runs it (a separate process talking
HTTP): submit an archive directory and wait with progress, list, show, fetch a transcript, cancel,
and resume a direct upload that was interrupted part-way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hark.client import HarkClient
from hark.submitting import upload_direct
from tests.audiofiles import encode, read_wav

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.wav"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli_key(settings) -> str:
    from hark.apikeys import create_key
    from hark.db import session_scope

    with session_scope(settings.database_url) as s:
        return create_key(s, "cli")


def hark(
    stack, key: str, *args: str, state_dir: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARK_URL": stack["url"], "HARK_API_KEY": key}
    if state_dir:
        env["HARK_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "hark.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_submit_an_archive_directory_and_wait(stack, cli_key, tmp_path) -> None:
    archive = tmp_path / "archive" / "2026"
    archive.mkdir(parents=True)
    shutil.copy(SAMPLE, archive / "standup.wav")
    samples, rate = read_wav(SAMPLE)
    encode(samples, rate, archive / "retro.flac", "flac")
    (archive / "notes.txt").write_text("not a recording")
    run = hark(stack, cli_key, "submit", str(tmp_path / "archive"), "--wait", state_dir=tmp_path / "state")
    assert run.returncode == 0, run.stderr
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    assert [(status, Path(name).name) for _, status, name in lines] == [("done", "retro.flac"), ("done", "standup.wav")]
    assert "2/2 finished" in run.stderr and "upload" in run.stderr and "done" in run.stderr

    job_id = lines[0][0]
    listing = hark(stack, cli_key, "ls", "--status", "done")
    assert listing.returncode == 0 and job_id in listing.stdout and "retro.flac" in listing.stdout
    srt = hark(stack, cli_key, "transcript", job_id, "--format", "srt")
    assert srt.returncode == 0 and "-->" in srt.stdout and "hello" in srt.stdout.lower()
    narrow = hark(stack, cli_key, "transcript", job_id, "--format", "srt", "--max-line-chars", "24", "--max-lines", "1")
    text = [x for x in narrow.stdout.splitlines() if x and "-->" not in x and not x.isdigit()]
    assert narrow.returncode == 0 and text and max(len(x) for x in text) <= 24
    status = hark(stack, cli_key, "status", job_id)
    assert status.returncode == 0 and '"status": "done"' in status.stdout

    # The same archive again is recognised (same content, same tenant): no new jobs.
    again = hark(stack, cli_key, "submit", str(tmp_path / "archive"), state_dir=tmp_path / "state")
    assert sorted(line.split("\t")[0] for line in again.stdout.splitlines()) == sorted(j for j, _, _ in lines)


def test_an_interrupted_direct_upload_resumes(stack, cli_key, tmp_path) -> None:
    # 12 s of speech and six minutes of silence: about 12 MB, three parts of 5 MiB in the tests.
    samples, rate = read_wav(SAMPLE)
    audio = np.concatenate([samples[: 12 * rate], np.zeros(360 * rate, dtype=np.float32)])
    path = encode(audio, rate, tmp_path / "long-meeting.wav", "wav")
    state = tmp_path / "state"

    class Interrupted(Exception):
        pass

    def stop_after_first_part(n: int) -> None:
        if n:
            raise Interrupted

    os.environ["HARK_STATE_DIR"] = str(state)
    try:
        with pytest.raises(Interrupted):
            upload_direct(HarkClient(stack["url"], cli_key), path, {"options": {}}, on_bytes=stop_after_first_part)
    finally:
        del os.environ["HARK_STATE_DIR"]
    assert len(list(state.glob("*.json"))) == 1

    run = hark(stack, cli_key, "submit", str(path), "--wait", state_dir=state)
    assert run.returncode == 0, run.stderr
    assert "resuming: 1/3 parts already uploaded" in run.stderr
    assert run.stdout.split("\t")[1] == "done"
    assert not list(state.glob("*.json"))


def test_cancel_a_queued_job(stack, cli_key, tmp_path) -> None:
    samples, rate = read_wav(SAMPLE)
    path = encode(np.concatenate([samples, samples]), rate, tmp_path / "twice.wav", "wav")
    submitted = hark(stack, cli_key, "submit", str(path), "--priority", "overnight", state_dir=tmp_path / "state")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split("\t")[0]
    cancelled = hark(stack, cli_key, "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{job_id}\tcancelled"
    assert HarkClient(stack["url"], cli_key).job(job_id)["status"] == "cancelled"
