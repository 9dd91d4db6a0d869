"""Prosodic measures of speech segments with Praat (through parselmouth): the voice itself.

Per segment: F0 median and range, intensity, articulation rate from syllable nuclei, pause
ratio, and voice quality (jitter, shimmer, HNR). These are the acoustic correlates of arousal
that speech-emotion research has used for decades; Praat is their reference implementation.

Cheap by construction, because it runs on every segment of every job:
- a batch's segments are analysed as one Sound (each analysis once per batch, not per segment),
  separated by silence longer than any analysis window so no frame mixes two segments;
- at 8 kHz (pitch at 4 kHz): speech F0 and intensity live well below 4 kHz, and Praat's
  analyses cost about half as much on half the samples;
- pitch frames every 30 ms (Praat's default for a 75 Hz floor is 10 ms), HNR frames every 80 ms;
- HNR from "To Harmonicity (ac)" (Praat's cross-correlation variant costs ten times as much).
tests/unit/test_prosody.py checks these shortcuts against Praat's defaults on a real recording.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import parselmouth
from parselmouth.praat import call
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
ANALYSIS_RATE = 8000
# Praat's pitch defaults (To Pitch: floor 75 Hz, ceiling 600 Hz), frames every 30 ms, tracked at
# 4 kHz: the harmonics below 2 kHz fix F0 as well as the full band does, at 60 % of the cost.
PITCH_FLOOR, PITCH_CEILING, PITCH_STEP, PITCH_RATE = 75.0, 600.0, 0.03, 4000
# HNR is a mean over the segment's frames (60 ms windows); a frame every 80 ms is plenty for a mean.
HNR_STEP = 0.08
# Intensity smoothing for a 100 Hz minimum pitch (Praat's default), frames every 10 ms.
INTENSITY_MIN_PITCH, INTENSITY_STEP = 100.0, 0.01
# Silence between segments in the batch's Sound: longer than the longest analysis window (40 ms
# for pitch at 75 Hz, 32 ms for intensity).
GAP_S = 0.1
# Syllable nuclei (de Jong & Wempe 2009): intensity peaks above (99th percentile − 25 dB) with a
# dip of at least 2 dB before them, in voiced speech. The same threshold marks pauses: silent
# stretches of at least 0.25 s (shorter ones are stop closures and breaths).
SILENCE_DB, MIN_DIP_DB, MIN_PAUSE_S = 25.0, 2.0, 0.25
# Less voiced time than this gives no F0 statistics (a handful of frames is mostly error).
MIN_VOICED_S = 0.1
# Less phonation than this gives no speaking rate.
MIN_PHONATION_S = 0.5
# Praat's usual jitter/shimmer arguments: shortest and longest period, largest period factor,
# largest amplitude factor.
PERIOD_MIN, PERIOD_MAX, PERIOD_FACTOR, AMPLITUDE_FACTOR = 0.0001, 0.02, 1.3, 1.6


def measure_batch(segments: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """Prosodic measures for each segment (16 kHz float samples), in order. A measure that cannot
    be had from a segment (too little voice, too short) is None."""
    if not segments:
        return []
    gap = np.zeros(int(GAP_S * ANALYSIS_RATE))
    parts, spans, gains, t = [], [], [], 0.0
    for samples in segments:
        x = np.asarray(samples, dtype=np.float64)
        x = resample_poly(x, ANALYSIS_RATE, SAMPLE_RATE) if len(x) else x
        # Each segment scaled to its own peak: Praat's voicing and silence thresholds are relative
        # to the Sound's peak, so a quiet segment must not be judged against a loud neighbour.
        peak = float(np.max(np.abs(x))) if len(x) else 0.0
        gain = 0.9 / peak if peak > 0 else 1.0
        parts += [gap, x * gain]
        gains.append(gain)
        t += GAP_S
        spans.append((t, t + len(x) / ANALYSIS_RATE))
        t += len(x) / ANALYSIS_RATE
    parts.append(gap)
    signal = np.concatenate(parts)
    sound = parselmouth.Sound(signal, ANALYSIS_RATE)
    low = parselmouth.Sound(resample_poly(signal, PITCH_RATE, ANALYSIS_RATE), PITCH_RATE)
    pitch = low.to_pitch_ac(time_step=PITCH_STEP, pitch_floor=PITCH_FLOOR, pitch_ceiling=PITCH_CEILING)
    intensity = sound.to_intensity(minimum_pitch=INTENSITY_MIN_PITCH, time_step=INTENSITY_STEP)
    # Glottal pulses are placed on the 8 kHz waveform, guided by the pitch contour.
    points = call([sound, pitch], "To PointProcess (cc)")
    harmonicity = sound.to_harmonicity_ac(time_step=HNR_STEP, minimum_pitch=PITCH_FLOOR)
    contours = _Contours(
        pitch_t=pitch.xs(),
        f0=pitch.selected_array["frequency"],
        hnr_t=harmonicity.xs(),
        hnr=harmonicity.values[0],
        intensity_t=intensity.xs(),
        intensity_db=intensity.values[0],
    )
    out = [_measure(sound, points, contours, a, b) for a, b in spans]
    for m, gain in zip(out, gains, strict=True):
        if m["intensity_db"] is not None:
            m["intensity_db"] = round(m["intensity_db"] - 20 * math.log10(gain), 2)
    return out


class _Contours:
    """The batch's frame values, sliced per segment."""

    def __init__(
        self,
        pitch_t: np.ndarray,
        f0: np.ndarray,
        hnr_t: np.ndarray,
        hnr: np.ndarray,
        intensity_t: np.ndarray,
        intensity_db: np.ndarray,
    ) -> None:
        self.pitch_t, self.f0, self.hnr_t, self.hnr = pitch_t, f0, hnr_t, hnr
        self.intensity_t, self.intensity_db = intensity_t, intensity_db

    def pitch(self, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        i, j = np.searchsorted(self.pitch_t, [a, b])
        return self.pitch_t[i:j], self.f0[i:j]

    def harmonicity(self, a: float, b: float) -> np.ndarray:
        i, j = np.searchsorted(self.hnr_t, [a, b])
        values = self.hnr[i:j]
        return values[values > -100]  # Praat marks silent frames -200 dB

    def intensity(self, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        i, j = np.searchsorted(self.intensity_t, [a, b])
        return self.intensity_t[i:j], self.intensity_db[i:j]


def _measure(sound: parselmouth.Sound, points: Any, c: _Contours, a: float, b: float) -> dict[str, Any]:
    duration = b - a
    pt, f0 = c.pitch(a, b)
    voiced = f0 > 0
    out: dict[str, Any] = dict.fromkeys(
        (
            "f0_median_hz",
            "f0_range_st",
            "intensity_db",
            "speaking_rate",
            "pause_ratio",
            "jitter",
            "shimmer",
            "hnr_db",
        )
    )
    out["voiced_s"] = round(float(voiced.sum()) * PITCH_STEP, 3)
    if out["voiced_s"] >= MIN_VOICED_S:
        lo, median, hi = np.percentile(f0[voiced], [10, 50, 90])
        out["f0_median_hz"] = round(float(median), 2)
        # 10th to 90th percentile: min to max would be an octave error's distance.
        out["f0_range_st"] = round(12 * math.log2(hi / lo), 3)
        hnr = c.harmonicity(a, b)
        out["hnr_db"] = round(float(np.mean(hnr)), 2) if len(hnr) else None
        out["jitter"] = _defined(call(points, "Get jitter (local)", a, b, PERIOD_MIN, PERIOD_MAX, PERIOD_FACTOR))
        out["shimmer"] = _defined(
            call([sound, points], "Get shimmer (local)", a, b, PERIOD_MIN, PERIOD_MAX, PERIOD_FACTOR, AMPLITUDE_FACTOR)
        )
    it, db = c.intensity(a, b)
    if len(db) == 0 or duration <= 0:
        return out
    # Praat's "Get mean" of an Intensity in energy: the mean power, in dB.
    out["intensity_db"] = round(float(10 * np.log10(np.mean(10 ** (db / 10)))), 2)
    threshold = float(np.percentile(db, 99)) - SILENCE_DB
    pause_s = _pause_seconds(db < threshold)
    out["pause_ratio"] = round(min(1.0, pause_s / duration), 4)
    phonation = duration - pause_s
    if phonation >= MIN_PHONATION_S and out["voiced_s"] >= MIN_VOICED_S:
        nuclei = _syllable_nuclei(it, db, threshold, pt[voiced])
        out["speaking_rate"] = round(nuclei / phonation, 3)
    return out


def _defined(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 5)


def _pause_seconds(silent: np.ndarray) -> float:
    """Seconds in runs of silent frames of at least MIN_PAUSE_S."""
    total, run = 0, 0
    min_frames = round(MIN_PAUSE_S / INTENSITY_STEP)
    for s in np.append(silent, False):
        if s:
            run += 1
        else:
            if run >= min_frames:
                total += run
            run = 0
    return total * INTENSITY_STEP


def _syllable_nuclei(t: np.ndarray, db: np.ndarray, threshold: float, voiced_t: np.ndarray) -> int:
    """Intensity peaks above the threshold, each with a dip of MIN_DIP_DB since the previous
    peak, that fall in voiced speech (within one pitch frame of a voiced frame)."""
    if len(db) < 3:
        return 0
    inner = db[1:-1]
    peaks = np.flatnonzero((inner > db[:-2]) & (inner >= db[2:]) & (inner > threshold)) + 1
    count, previous = 0, None
    for p in peaks:
        if previous is not None and db[p] - db[previous:p].min() < MIN_DIP_DB:
            if db[p] > db[previous]:
                previous = p  # the same syllable, its higher top
            continue
        previous = p
        if len(voiced_t) and np.min(np.abs(voiced_t - t[p])) <= PITCH_STEP:
            count += 1
    return count
