"""Prosody that measures the voice: known changes move each measure the right way and by the
right amount, the batched shortcuts agree with Praat's defaults on a real recording, and the
engine's valence comes from VADER."""

from __future__ import annotations

import io
import math
import subprocess
import wave
from pathlib import Path

import numpy as np
import parselmouth
import pytest
from parselmouth.praat import call
from scipy.signal import resample_poly

from hark.settings import Settings
from worker.affect import SegmentMeasures, assess
from worker.engines.base import SegmentAudio
from worker.engines.emotion_prosody import ProsodyEmotion
from worker.prosody import SAMPLE_RATE, measure_batch

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.wav"
TURNS = SAMPLE.with_suffix(".rttm")  # its reference speaker turns
TEXT = "The quarterly budget meeting moved to Thursday afternoon, so please send your figures before lunch."
# 24 syllables (the-quar-ter-ly bud-get meet-ing moved to thurs-day af-ter-noon so please send
# your fig-ures be-fore lunch).
SYLLABLES = 24


def read_wav(data: bytes) -> np.ndarray:
    """16-bit mono WAV bytes as float32 samples at 16 kHz."""
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return x if rate == SAMPLE_RATE else resample_poly(x, SAMPLE_RATE, rate).astype(np.float32)


def espeak(pitch: int = 50, wpm: int = 160, amplitude: int = 100) -> np.ndarray:
    args = ["espeak-ng", "-v", "en-us", "-p", str(pitch), "-s", str(wpm), "-a", str(amplitude), "--stdout", TEXT]
    # espeak-ng streams its WAV with a placeholder length; patch the RIFF sizes so `wave` reads it.
    data = bytearray(subprocess.run(args, capture_output=True, check=True).stdout)
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    data[40:44] = (len(data) - 44).to_bytes(4, "little")
    return read_wav(bytes(data))


@pytest.fixture(scope="module")
def spoken() -> dict[str, dict]:
    """The same sentence at several pitches, rates and amplitudes, measured in one batch."""
    variants = {
        "base": {},
        "low": {"pitch": 20},
        "high": {"pitch": 80},
        "slow": {"wpm": 100},
        "fast": {"wpm": 250},
        "quiet": {"amplitude": 40},
        "loud": {"amplitude": 160},
    }
    audio = {name: espeak(**kw) for name, kw in variants.items()}
    measures = measure_batch(list(audio.values()))
    return {name: {**m, "duration_s": len(audio[name]) / SAMPLE_RATE} for name, m in zip(audio, measures, strict=True)}


def semitones(a: float, b: float) -> float:
    return 12 * math.log2(a / b)


def test_pitch_moves_with_the_voice_and_nothing_else_does(spoken):
    low, base, high = (spoken[k]["f0_median_hz"] for k in ("low", "base", "high"))
    assert low < base < high
    assert 4 <= semitones(high, low) <= 15  # espeak-ng's pitch 20 → 80: about 9 semitones
    for k in ("slow", "fast", "quiet", "loud"):  # same pitch setting: same F0 within a semitone
        assert abs(semitones(spoken[k]["f0_median_hz"], base)) < 1.0, k
    assert abs(spoken["high"]["intensity_db"] - spoken["low"]["intensity_db"]) < 3.0


def test_loudness_follows_the_amplitude_in_decibels(spoken):
    # espeak-ng scales samples linearly with -a: 40 → 160 is 20·log10(4) = 12.0 dB.
    assert spoken["loud"]["intensity_db"] - spoken["quiet"]["intensity_db"] == pytest.approx(12.0, abs=1.0)
    assert spoken["base"]["intensity_db"] - spoken["quiet"]["intensity_db"] == pytest.approx(8.0, abs=1.0)
    assert abs(semitones(spoken["loud"]["f0_median_hz"], spoken["quiet"]["f0_median_hz"])) < 0.5


def test_speaking_rate_counts_syllables_per_second_of_phonation(spoken):
    slow, base, fast = (spoken[k]["speaking_rate"] for k in ("slow", "base", "fast"))
    assert slow < base < fast
    assert fast / slow == pytest.approx(250 / 100, rel=0.3)
    for k in ("slow", "base", "fast"):  # about the sentence's syllables over its voiced time
        m = spoken[k]
        truth = SYLLABLES / (m["duration_s"] * (1 - m["pause_ratio"]))
        assert m["speaking_rate"] == pytest.approx(truth, rel=0.25), k
    for k in ("quiet", "loud"):  # louder is not faster
        assert spoken[k]["speaking_rate"] == pytest.approx(base, rel=0.15), k


def test_voice_quality_and_pauses_are_in_range(spoken):
    for name, m in spoken.items():
        assert 0 <= m["pause_ratio"] < 0.5, name
        assert 0 < m["jitter"] < 0.05 and 0 < m["shimmer"] < 0.3, name
        assert -5 < m["hnr_db"] < 30 and m["f0_range_st"] > 0, name
    # A second of silence inside the sentence is a pause the measure sees.
    base = espeak()
    half = len(base) // 2
    gap = np.concatenate([base[:half], np.zeros(SAMPLE_RATE, dtype=np.float32), base[half:]])
    (with_gap,) = measure_batch([gap])
    added = with_gap["pause_ratio"] * len(gap) / SAMPLE_RATE - spoken["base"]["pause_ratio"] * len(base) / SAMPLE_RATE
    assert added == pytest.approx(1.0, abs=0.15)


def sample_turns() -> list[np.ndarray]:
    """The sample's reference speaker turns of a second or more, as segments."""
    x = read_wav(SAMPLE.read_bytes())
    turns = [line.split()[3:5] for line in TURNS.read_text().splitlines()]
    return [
        x[round(float(a) * SAMPLE_RATE) : round((float(a) + float(d)) * SAMPLE_RATE)] for a, d in turns if float(d) >= 1
    ]


def test_agrees_with_praat_defaults_on_a_real_recording():
    """The engine analyses a batch as one 8 kHz Sound (pitch at 4 kHz, 30 ms frames); Praat's defaults
    analyse each segment alone at 16 kHz with 10 ms frames. Stated tolerances on the real
    telephone sample: F0 median within 0.5 semitone, loudness within 0.5 dB, HNR within 2.5 dB."""
    segments = sample_turns()
    measured = measure_batch(segments)
    compared = 0
    for samples, m in zip(segments, measured, strict=True):
        sound = parselmouth.Sound(samples.astype(np.float64), SAMPLE_RATE)
        loudness = call(sound.to_intensity(), "Get mean", 0, 0, "energy")
        assert m["intensity_db"] == pytest.approx(loudness, abs=0.5)
        f0 = sound.to_pitch().selected_array["frequency"]
        if (f0 > 0).sum() * 0.01 < 0.5:  # under half a second voiced: no F0 to compare
            continue
        compared += 1
        assert abs(semitones(m["f0_median_hz"], float(np.median(f0[f0 > 0])))) < 0.5
        assert m["hnr_db"] == pytest.approx(call(sound.to_harmonicity_ac(), "Get mean", 0, 0), abs=2.5)
    assert compared >= 6


def test_engine_measures_and_reads_valence_with_vader():
    engine = ProsodyEmotion()
    engine.load(Settings())
    voice = espeak()
    batch = [
        SegmentAudio(1, 0, 0.0, 6.0, voice, text="This is wonderful news, thank you so much!", language="en"),
        SegmentAudio(2, 1, 6.0, 12.0, voice, text="This is a terrible, awful mess.", language="en"),
        SegmentAudio(3, 2, 12.0, 18.0, voice, text="Das ist wunderbar.", language="de"),
        SegmentAudio(4, 3, 18.0, 24.0, voice, text="", language=None),
    ]
    results = engine.run(batch)
    assert [r.segment_id for r in results] == [1, 2, 3, 4]
    assert results[0].valence > 0.5 and results[1].valence < -0.5
    assert results[2].valence is None and results[3].valence is None  # not English; no words
    for r in results:
        assert r.emotion == "neutral" and r.emotion_source == "prosody+text"  # arousal comes in reduce
        assert r.prosody["f0_median_hz"] == pytest.approx(results[0].prosody["f0_median_hz"], rel=0.01)


def test_silence_and_empty_segments_give_no_voice_measures():
    quiet = np.zeros(SAMPLE_RATE, dtype=np.float32)
    empty = np.zeros(0, dtype=np.float32)
    for m in measure_batch([quiet, empty]):
        assert m["f0_median_hz"] is None and m["speaking_rate"] is None and m["jitter"] is None


def test_a_louder_faster_sentence_is_heated_against_the_same_voice():
    """From audio to flag: one voice's ordinary sentences vary a little; the one said louder and
    faster than all of them is the only heated one, and with angry words it is labelled angry."""
    ordinary = [(48, 155, 90), (52, 165, 110), (50, 160, 100), (46, 150, 95), (54, 170, 105), (50, 158, 100)]
    audio = [espeak(pitch=p, wpm=w, amplitude=a) for p, w, a in ordinary] + [espeak(pitch=56, wpm=240, amplitude=220)]
    measures = measure_batch(audio)
    valence = [0.0] * len(ordinary) + [-0.8]
    found = assess([SegmentMeasures("SPEAKER_00", m, v) for m, v in zip(measures, valence, strict=True)])
    assert [a.heated for a in found] == [False] * len(ordinary) + [True]
    assert found[-1].emotion == "angry" and found[-1].loudness_db > 5
    assert all(a.emotion == "neutral" for a in found[:-1])
