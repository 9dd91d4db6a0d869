"""A folder of real recordings with reference speaker turns, read the way bench/real_der.py and the
tests score them.

The layout is that of `../shared/corpus/ami-excerpts/`: WAV files, a `reference.rttm` whose file
ids are the WAVs' names without the extension, and optionally a `reference.uem` giving the scored
part of each file (without one, each file is scored from its start to its end).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

Turn = tuple[float, float, str]


@dataclass
class Recording:
    name: str
    wav: Path
    turns: list[Turn]
    scored: list[tuple[float, float]]  # the UEM's spans

    @property
    def speakers(self) -> int:
        return len({t[2] for t in self.turns})


def read_rttm(text: str) -> dict[str, list[Turn]]:
    """Turns per file id."""
    out: dict[str, list[Turn]] = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            out.setdefault(parts[1], []).append((start, start + duration, parts[7]))
    return out


def read_folder(folder: Path) -> list[Recording]:
    """Every WAV of `folder` that the reference names, in name order."""
    rttm = folder / "reference.rttm"
    if not rttm.exists():
        raise FileNotFoundError(f"{rttm} is missing: each folder needs a reference.rttm")
    turns = read_rttm(rttm.read_text(encoding="utf-8"))
    uem: dict[str, list[tuple[float, float]]] = {}
    if (folder / "reference.uem").exists():
        for line in (folder / "reference.uem").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4:
                uem.setdefault(parts[0], []).append((float(parts[2]), float(parts[3])))
    out = []
    for wav in sorted(folder.glob("*.wav")):
        if wav.stem not in turns:
            continue
        scored = uem.get(wav.stem) or [(0.0, soundfile.info(str(wav)).duration)]
        out.append(Recording(wav.stem, wav, sorted(turns[wav.stem]), scored))
    if not out:
        raise FileNotFoundError(f"no WAV in {folder} has turns in its reference.rttm")
    return out


def concatenate(recordings: list[Recording], minutes: float, path: Path, seed: int = 7) -> Recording:
    """One long meeting from the recordings' scored parts, in a shuffled order, repeated until it
    lasts `minutes`; speaker names are kept, so one person keeps one label throughout (as AMI's
    own ids do across its excerpts). Written as 16 kHz 16-bit mono."""
    rng = random.Random(seed)
    pieces: list[np.ndarray] = []
    turns: list[Turn] = []
    offset, target = 0.0, minutes * 60
    while offset < target:
        order = list(recordings)
        rng.shuffle(order)
        for rec in order:
            audio, rate = soundfile.read(str(rec.wav), dtype="float32", always_2d=True)
            if rate != 16000:
                raise ValueError(f"{rec.wav}: 16 kHz expected, found {rate} Hz")
            for start, end in rec.scored:
                part = audio[int(start * rate) : int(end * rate), 0]
                pieces.append(part)
                for a, b, who in rec.turns:
                    a, b = max(a, start), min(b, end)
                    if b > a:
                        turns.append((round(offset + a - start, 3), round(offset + b - start, 3), who))
                offset += part.size / rate
            if offset >= target:
                break
    soundfile.write(str(path), np.concatenate(pieces), 16000, subtype="PCM_16")
    return Recording(path.stem, path, sorted(turns), [(0.0, offset)])
