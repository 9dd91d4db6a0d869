"""Real speech in several languages, for language detection (bench/languages.py).

examples/languages holds one Asterisk prompt per language. `debian_speech` fetches many more from
Debian's own packages with `apt-get download` (no other source is reachable from a build machine):
the voice prompts of asterisk-core-sounds-<lang>-g722 (G.722, 16 kHz, one professional voice per
language) and the Dutch lines of the game fillets-ng-data-nl (Ogg Vorbis, volunteer voices).
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
ASTERISK = {
    "en": "en_US_f_Allison",
    "es": "es_MX_f_Allison",
    "fr": "fr_CA_f_June",
    "it": "it_IT_m_Carlo",
    "ru": "ru_RU_f_IvrvoiceRU",
}
DUTCH = "fillets-ng-data-nl"
MIN_S = 5.0  # shorter prompts are single words, digits and letters
SINGLES = 20
RECORDINGS = 10


def decode(path: Path, container: str | None = None) -> np.ndarray:
    """Mono float32 at 16 kHz."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    with av.open(str(path), format=container) as f:
        blocks = [b.to_ndarray().reshape(-1) for frame in f.decode(audio=0) for b in resampler.resample(frame)]
    blocks += [b.to_ndarray().reshape(-1) for b in resampler.resample(None)]
    return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)


def example_speech() -> dict[str, list[tuple[str, np.ndarray]]]:
    folder = ROOT / "examples" / "languages"
    return {
        "examples/languages (one prompt each: en, es, fr, it, ru)": [
            (p.name[:2], decode(p, "g722")) for p in sorted(folder.glob("*.g722"))
        ]
    }


def meeting_speech() -> dict[str, list[tuple[str, np.ndarray]]]:
    """English in real rooms: the AMI meeting excerpts (far field, quiet) and the telephone call
    of ../shared/corpus, whole (30 s each)."""
    import soundfile

    corpus = ROOT.parent / "shared" / "corpus"
    ami = sorted((corpus / "ami-excerpts").glob("*.wav"))
    return {
        "en: AMI meeting excerpts": [("en", soundfile.read(p, dtype="float32")[0]) for p in ami],
        "en: telephone call (pyannote sample)": [
            ("en", soundfile.read(corpus / "pyannote-sample" / "sample.wav", dtype="float32")[0])
        ],
    }


def fetch(cache: Path, package: str) -> Path:
    """The package's files, unpacked under `cache` (downloaded once)."""
    target = cache / package
    if not target.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True)
        deb = next(cache.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
        deb.unlink()
    return target


def debian_speech(cache: Path, seed: int = 0) -> dict[str, list[tuple[str, np.ndarray]]]:
    rng = random.Random(seed)
    sets: dict[str, list[tuple[str, np.ndarray]]] = {}
    for lang, voice in ASTERISK.items():
        folder = fetch(cache, f"asterisk-core-sounds-{lang}-g722") / "usr/share/asterisk/sounds" / voice
        prompts = [a for a in (decode(p, "g722") for p in sorted(folder.glob("*.g722"))) if a.size >= MIN_S * RATE]
        rng.shuffle(prompts)
        sets[f"{lang}: Asterisk prompts ≥ 5 s"] = [(lang, a) for a in prompts[:SINGLES]]
        recordings, rest, pause = [], prompts[SINGLES:], np.zeros(RATE // 2, np.float32)
        while rest and len(recordings) < RECORDINGS:
            parts: list[np.ndarray] = []
            while rest and sum(p.size for p in parts) < 30 * RATE:
                parts += [rest.pop(), pause]
            recordings.append((lang, np.concatenate(parts)))
        sets[f"{lang}: prompts joined to 30–40 s"] = recordings
    lines = sorted((fetch(cache, DUTCH) / "usr/share/games/fillets-ng/sound").glob("*/nl/*.ogg"))
    dutch = [a for a in (decode(p) for p in lines) if a.size >= MIN_S * RATE]
    rng.shuffle(dutch)
    sets["nl: game dialogue ≥ 5 s"] = [("nl", a) for a in dutch[:SINGLES]]
    return sets
