"""The parts behind issue 8's speed-ups: stage clocks, Whisper clip packing and estimated word
times, per-process thread counts, and the batched VAD giving the per-frame model's answer."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from hark.settings import Settings
from worker.batching import pack_clips
from worker.engines.asr_whisper import spread_words
from worker.timing import Clock
from worker.tuning import cpus, threads_per_process

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.wav"


def test_clock_sums_parts_into_existing_timings():
    clock = Clock()
    with clock.part("asr_model", cpu=True):
        sum(i * i for i in range(200_000))  # some CPU
    with clock.part("asr_db"):
        time.sleep(0.02)
    clock.add("asr_db", 0.5)
    merged = clock.merged({"asr_db_s": 1.0, "prepare_s": 2.0})
    assert merged["prepare_s"] == 2.0
    assert merged["asr_db_s"] == pytest.approx(1.52, abs=0.05)
    assert merged["asr_model_s"] > 0 and merged["asr_model_cpu_s"] > 0
    assert "asr_db_cpu_s" not in merged  # CPU only where asked for


def test_clips_pack_consecutive_segments_up_to_the_limit():
    second = 16000
    lengths = [10 * second, 12 * second, 9 * second, 29 * second, 31 * second, 1 * second, 0]
    assert pack_clips(lengths, 30 * second) == [(0, 1), (2, 2), (3, 3), (4, 4), (5, 6)]
    # 0: a clip per segment, as before packing.
    assert pack_clips(lengths, 0) == [(i, i) for i in range(len(lengths))]
    assert pack_clips([], 30 * second) == []


def test_estimated_word_times_share_the_piece_by_length():
    words = spread_words(" Good morning, everyone.", 10.0, 12.2)
    assert [w for _, _, w, _ in words] == [" Good", " morning,", " everyone."]
    assert words[0][0] == 10.0 and words[-1][1] == pytest.approx(12.2)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(words, words[1:]))
    # "morning," has twice the characters of "Good": twice the time.
    assert (words[1][1] - words[1][0]) == pytest.approx(2 * (words[0][1] - words[0][0]))
    assert spread_words("", 0.0, 1.0) == []


def test_threads_are_shared_among_pool_processes():
    assert threads_per_process(Settings(torch_threads=3), 4) == 3
    assert threads_per_process(Settings(torch_threads=0), 1) == cpus()
    assert threads_per_process(Settings(torch_threads=0), 1000) == 1
    # prepare, clustering and reduce share the cores with the model processes: one thread
    assert threads_per_process(Settings(torch_threads=0), 1, ("cpu",)) == 1
    assert threads_per_process(Settings(torch_threads=4), 1, ("cpu",)) == 1
    assert threads_per_process(Settings(torch_threads=0), 1, ("cpu", "asr")) == cpus()
    # Models on a GPU: one host thread unless set; a non-model worker stays at one either way.
    assert threads_per_process(Settings(torch_threads=0), 1, gpu=True) == 1
    assert threads_per_process(Settings(torch_threads=3), 1, gpu=True) == 3
    assert threads_per_process(Settings(torch_threads=0), 1, ("cpu",), gpu=True) == 1


def test_batched_vad_gives_the_per_frame_models_probabilities():
    import torch
    from silero_vad import load_silero_vad

    from tests.audiofiles import read_wav
    from worker.engines.vad_silero import FRAME, SileroVad

    samples, rate = read_wav(SAMPLE)
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    stream = SileroVad().stream()
    for i in range(0, pcm.size, 7001):  # blocks that cut frames apart
        stream.feed(pcm[i : i + 7001])
    model = load_silero_vad(onnx=False)
    model.reset_states()
    frames = torch.from_numpy(pcm[: pcm.size // FRAME * FRAME].astype(np.float32) / 32768.0).reshape(-1, FRAME)
    with torch.inference_mode():
        expected = np.array([float(model(frames[i : i + 1], 16000)) for i in range(frames.shape[0])])
    got = stream.probabilities()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
    assert (expected > 0.5).sum() > 100  # the sample is mostly speech: the comparison means something


@pytest.fixture(scope="module")
def three_voices():
    """Three segments, each a different espeak-ng voice saying a different sentence, 10 s apart."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from synth import VOICES, speak

    from worker.engines.base import SegmentAudio

    sentences = [
        "The server costs went up again this month.",
        "Please update the roadmap before Friday.",
        "Our biggest customer renewed their contract yesterday.",
    ]
    segments = []
    for i, text in enumerate(sentences):
        audio = np.concatenate([np.zeros(1600, np.float32), speak(VOICES[i], text), np.zeros(1600, np.float32)])
        start = 10.0 * i + 1.0
        segments.append(SegmentAudio(i, i, start, round(start + audio.size / 16000, 3), audio))
    return segments, sentences


def test_vad_in_its_own_thread_gives_the_same_probabilities():
    from tests.audiofiles import read_wav
    from worker.engines.vad_silero import SileroVad
    from worker.tasks.prepare import VadThread

    samples, _ = read_wav(SAMPLE)
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    direct, threaded = SileroVad().stream(), SileroVad().stream()
    vad = VadThread(threaded, depth=2)
    for i in range(0, pcm.size, 7001):
        direct.feed(pcm[i : i + 7001])
        vad.feed(pcm[i : i + 7001])
    vad.finish()
    assert not vad._thread.is_alive()
    assert np.array_equal(threaded.probabilities(), direct.probabilities())
    assert threaded.samples == pcm.size and vad.wall_s > 0 and vad.cpu_s > 0


def test_a_vad_failure_reaches_the_task_and_the_thread_ends():
    from worker.tasks.prepare import VadThread

    class Broken:
        def feed(self, block):
            raise RuntimeError("onnx said no")

    vad = VadThread(Broken(), depth=1)
    vad.feed(np.zeros(16000, np.int16))
    with pytest.raises(RuntimeError, match="onnx said no"):
        for _ in range(20):
            vad.feed(np.zeros(16000, np.int16))
            time.sleep(0.01)
        vad.finish()
    vad.stop()
    assert not vad._thread.is_alive()


@pytest.mark.parametrize("word_timestamps", [True, False])
def test_packed_clip_gives_each_segment_its_own_words(three_voices, word_timestamps):
    """The three segments go through Whisper as one clip; each must get back exactly its words,
    timed inside its own span of the recording."""
    from worker.engines.asr_whisper import WhisperAsr

    segments, sentences = three_voices
    engine = WhisperAsr()
    engine.load(Settings(asr_clip_s=30.0, asr_word_timestamps=word_timestamps))
    assert pack_clips([s.samples.size for s in segments], 30 * 16000) == [(0, 2)]
    results = engine.run(segments)
    assert [r.segment_id for r in results] == [0, 1, 2]
    keys = [("server", "month"), ("roadmap", "friday"), ("customer", "yesterday")]
    for seg, result, own in zip(segments, results, keys):
        text = result.text.lower()
        assert all(k in text for k in own), (result.text, own)
        others = [k for other in keys if other != own for k in other]
        assert not any(k in text for k in others), result.text
        assert result.words and all(seg.start_s <= w["start"] <= w["end"] <= seg.end_s for w in result.words)
        assert "".join(w["word"] for w in result.words).strip() == result.text
        assert (result.words[0]["p"] is None) == (not word_timestamps)


def test_batches_end_where_a_clip_ends():
    from worker.tasks.prepare import plan_batches

    spans = [(i * 12.0, i * 12.0 + 9.9) for i in range(20)]  # 9.9 s each: three to a 30 s clip
    batches = plan_batches(spans, 45.0, clip_s=30.0)
    # The first batch is one clip (an eighth of 45 s is reached by its first clip), so model work
    # can start early; the others take clips until they hold 45 s.
    assert [(b.first_idx, b.last_idx) for b in batches] == [(0, 2), (3, 8), (9, 14), (15, 19)]
    # Without clips (or batches smaller than a clip) a batch ends after any segment, as before.
    assert [(b.first_idx, b.last_idx) for b in plan_batches(spans, 45.0)][:2] == [(0, 0), (1, 5)]
    assert len(plan_batches(spans, 0.5, clip_s=30.0)) == 20


def test_cpu_vendor_from_cpuinfo_sets_clips_per_pass(tmp_path):
    from worker.cpu import read_vendor
    from worker.engines.asr_whisper import default_batch_size

    intel, amd = tmp_path / "intel", tmp_path / "amd"
    intel.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2\n\nprocessor\t: 1\nvendor_id\t: Other\n"
    )
    amd.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2\n")
    assert read_vendor(intel) == "GenuineIntel" and read_vendor(amd) == "AuthenticAMD"
    assert read_vendor(tmp_path / "missing") == ""
    assert default_batch_size("cpu", intel=True) == 1
    assert default_batch_size("cpu", intel=False) == 8
    assert default_batch_size("cuda", intel=True) == 8


def test_batched_clips_give_the_one_at_a_time_transcript(three_voices):
    """Three clips in one forward pass must give each segment what it gets alone."""
    from worker.engines.asr_whisper import WhisperAsr

    segments, _ = three_voices
    results = {}
    for batch_size in (1, 8):
        engine = WhisperAsr()
        engine.load(Settings(asr_clip_s=5.0, asr_batch_size=batch_size))
        assert engine.batch_size == batch_size
        results[batch_size] = engine.run(segments)
    assert [r.text for r in results[8]] == [r.text for r in results[1]]
    assert all(r.text for r in results[8])
    assert [[w["word"] for w in r.words] for r in results[8]] == [[w["word"] for w in r.words] for r in results[1]]


def test_clipwise_encoder_and_aligner_give_the_batched_words(three_voices):
    """On a CPU the encoder and the word aligner run one clip at a time while the decoder takes
    the batch: the words and their times must be what fully batched calls give."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from worker.engines.asr_whisper import WhisperAsr

    segments, _ = three_voices
    engine = WhisperAsr()
    engine.load(Settings(asr_clip_s=5.0, asr_batch_size=8, torch_threads=1))
    clipwise = engine.run(segments)
    engine.pipeline = BatchedInferencePipeline(
        model=WhisperModel(
            str(engine.model_dir()), device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True
        )
    )
    batched = engine.run(segments)
    assert all(r.words for r in clipwise)
    assert [r.text for r in clipwise] == [r.text for r in batched]
    assert [[(w["word"], w["start"], w["end"]) for w in r.words] for r in clipwise] == [
        [(w["word"], w["start"], w["end"]) for w in r.words] for r in batched
    ]


def test_model_processes_keep_freed_memory_and_others_do_not(monkeypatch):
    """With the model processes' malloc settings, buffers freed after one pass are reused by the
    next without faulting pages in again (by default glibc hands part of them back to the
    kernel each time); and only a process serving a model queue applies them."""
    import subprocess
    import sys

    import worker.tuning as tuning

    code = """
import resource, sys, numpy as np
import worker.tuning as t
if sys.argv[1] == "on":
    assert t.keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def one_pass():
    blocks = [np.ones(20 << 20, np.uint8) for _ in range(6)]
    del blocks
one_pass()
before = faults()
for _ in range(10):
    one_pass()
print(faults() - before)
"""
    faults = {
        mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True).stdout)
        for mode in ("off", "on")
    }
    assert faults["off"] > 5000 and faults["on"] < 500, faults
    calls: list[str] = []
    monkeypatch.setattr(tuning, "keep_freed_memory", lambda: calls.append("malloc") or True)
    monkeypatch.setattr(tuning, "apply_threads", lambda n: calls.append(f"threads {n}"))
    assert tuning.tune_process(Settings(torch_threads=0), 1, ("cpu",)) == 1
    assert calls == ["threads 1"]
    calls.clear()
    assert tuning.tune_process(Settings(torch_threads=0), 1, ("asr", "embed"), gpu=True) == 1
    assert calls == ["malloc", "threads 1"]
