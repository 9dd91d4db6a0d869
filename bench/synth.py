"""Synthetic meetings with known ground truth, for tests and benchmarks of long, many-speaker audio.

Each speaker is an espeak-ng voice (Debian's `espeak-ng`) with its own accent, variant, pitch and
rate; turns are read from Hark's own sentence list, separated by pauses, sometimes overlapping the
previous turn. The recording is written in blocks (a 10-hour meeting never sits in memory) together
with its reference RTTM and a JSON list of turns with their text.

    python bench/synth.py OUT.wav --speakers 4 --minutes 10 [--seed 1] [--overlap 0.1]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile

RATE = 16000

# (espeak-ng voice, pitch 0-99, words per minute): twelve distinct-sounding speakers.
VOICES = [
    ("en-us+m1", 35, 165),
    ("en-gb+f2", 65, 170),
    ("en-us+m3", 50, 150),
    ("en-gb-scotland+f3", 70, 160),
    ("en-029+m5", 30, 175),
    ("en-us+f4", 75, 155),
    ("en-gb-x-rp+m7", 45, 145),
    ("en-us+f1", 60, 180),
    ("en-gb+m2", 25, 160),
    ("en-gb-x-gbclan+f5", 80, 150),
    ("en-us+m4", 40, 185),
    ("en-gb+m6", 55, 140),
]

SENTENCES = [
    "Let us start with the budget for the next quarter.",
    "I think we should move the launch to early spring.",
    "The numbers from last week look much better than expected.",
    "Can everyone see the slides on their screen now?",
    "We still need an owner for the customer survey.",
    "I am worried that the deadline is too close.",
    "That is great news for the whole team.",
    "Could you send me the report after the call?",
    "The server costs went up again this month.",
    "I agree, but we should check with legal first.",
    "Our users keep asking for a better search feature.",
    "Let me share what I learned from the interviews.",
    "We lost two days because of the outage on Tuesday.",
    "I am happy with the progress on the mobile app.",
    "Who is going to follow up with the vendor?",
    "The design review is scheduled for Thursday afternoon.",
    "Honestly, I find this plan a bit risky.",
    "We should hire one more engineer before summer.",
    "Thanks, that answers my question completely.",
    "Let us take the rest of this offline.",
    "The training data needs another round of cleaning.",
    "I was surprised by how fast the tests ran.",
    "Please update the roadmap before Friday.",
    "Our biggest customer renewed their contract yesterday.",
]


@dataclass
class Turn:
    start: float
    end: float
    speaker: str
    text: str


def require_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
    return exe


def speak(voice: tuple[str, int, int], text: str) -> np.ndarray:
    """One utterance as float32 samples at 16 kHz."""
    name, pitch, wpm = voice
    wav = subprocess.run(
        [require_espeak(), "-v", name, "-p", str(pitch), "-s", str(wpm), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    import io

    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    if rate != RATE:
        from scipy.signal import resample_poly

        g = np.gcd(rate, RATE)
        samples = resample_poly(samples, RATE // g, rate // g).astype(np.float32)
    # espeak pads with silence; trim it so turn boundaries are where the voice is.
    voiced = np.nonzero(np.abs(samples) > 0.01)[0]
    return samples[voiced[0] : voiced[-1] + 1] * 0.6 if voiced.size else samples


def synth_meeting(
    path: Path,
    speakers: int,
    minutes: float,
    seed: int = 0,
    overlap: float = 0.1,
    pause: tuple[float, float] = (0.3, 1.5),
    lead_in: float = 1.0,
) -> list[Turn]:
    """Write a meeting to `path` (16 kHz mono 16-bit WAV), `path.rttm` and `path.json`; return the turns."""
    if not 1 <= speakers <= len(VOICES):
        raise ValueError(f"1 to {len(VOICES)} speakers")
    rng = random.Random(seed)
    voices = {f"spk{i:02d}": VOICES[i] for i in range(speakers)}
    names = list(voices)
    total = int(minutes * 60 * RATE)
    turns: list[Turn] = []
    # Samples before `flushed` are on disk; `tail` holds the rest, where a new turn may still mix in.
    tail = np.zeros(int(lead_in * RATE), dtype=np.float32)
    flushed, cursor, previous = 0, int(lead_in * RATE), None
    with soundfile.SoundFile(str(path), "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        while cursor < total:
            speaker = rng.choice([n for n in names if n != previous] or names)
            text = " ".join(rng.sample(SENTENCES, rng.randint(1, 3)))
            audio = speak(voices[speaker], text)
            if turns and rng.random() < overlap:
                start = max(flushed, cursor - int(rng.uniform(0.3, 0.8) * RATE))
            else:
                start = cursor + int(rng.uniform(*pause) * RATE)
            end = start + audio.size
            if end > flushed + tail.size:
                tail = np.concatenate([tail, np.zeros(end - flushed - tail.size, dtype=np.float32)])
            tail[start - flushed : end - flushed] += audio
            turns.append(Turn(round(start / RATE, 3), round(end / RATE, 3), speaker, text))
            cursor, previous = max(cursor, end), speaker
            keep_from = max(0, cursor - flushed - RATE)  # keep 1 s for the next overlap
            if keep_from > 0:
                out.write(np.clip(tail[:keep_from], -1, 1))
                tail, flushed = tail[keep_from:], flushed + keep_from
        out.write(np.clip(tail, -1, 1))
    stem = path.with_suffix("")
    Path(f"{stem}.rttm").write_text(
        "".join(
            f"SPEAKER {path.stem} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
            for t in turns
        )
    )
    Path(f"{stem}.json").write_text(json.dumps([asdict(t) for t in turns], indent=1))
    return turns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overlap", type=float, default=0.1)
    args = parser.parse_args()
    turns = synth_meeting(args.out, args.speakers, args.minutes, args.seed, args.overlap)
    print(f"{args.out}: {len(turns)} turns, {turns[-1].end / 60:.1f} min, {args.speakers} speakers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
