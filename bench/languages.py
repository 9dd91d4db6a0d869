"""Language detection and word error rate per language, and whisper-base's cost next to tiny.en's.

    python bench/languages.py [--debian]

Real speech: examples/languages (one prompt per language, real voices), and with --debian many
more: the voice prompts of Debian's asterisk-core-sounds-{en,es,fr,it,ru}-g722 packages (one
professional voice per language, CC-BY(-SA)-3.0) and the Dutch dialogue of fillets-ng-data-nl (a
game's volunteer voices, GPL-2), fetched with `apt-get download` into .hark/cache/languages. Each
prompt of 5 s or more counts alone (20 per language, drawn at random) and runs of them joined to
30–40 s count as recordings. Detection as shipped (a quick look, then the full window when
unsure; worker/language.py) against Whisper's full 30 s window alone, with CPU seconds for each.

Generated speech: one paragraph per language (bench/languages_speech.py, espeak-ng voices), its
language detected as a job with `language: auto` detects it (worker/language.py: whisper-base on
the first 30 s of speech) and transcribed by the engine the job would then use. Real speech: the
pyannote sample (a telephone call, ../shared/corpus/pyannote-sample) with its STM reference,
VAD-segmented as prepare cuts it, through tiny.en and whisper-base. Cost: CPU seconds per audio hour
of each engine over the generated English meeting of bench/synth.py (5 min, 3 speakers, seed 21),
one thread.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from asr_quality import edit_distance, reference_words, segments, transcribe  # noqa: E402
from languages_speech import PARAGRAPHS, paragraph_speech  # noqa: E402
from real_languages import debian_speech, example_speech, meeting_speech  # noqa: E402

from hark.settings import Settings  # noqa: E402
from worker.engines import get_engine  # noqa: E402
from worker.engines.base import SegmentAudio  # noqa: E402
from worker.language import detect, plan_asr  # noqa: E402

STM = ROOT.parent / "shared" / "corpus" / "pyannote-sample" / "sample.stm"


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def wer(ref: list[str], hyp: list[str]) -> float:
    return edit_distance(ref, hyp) / max(1, len(ref))


def full_window(cfg: Settings, segs: list[SegmentAudio]) -> str:
    """Whisper's own detection: the first 30 s of speech, padded to one full window."""
    engine = get_engine("whisper-base", cfg)
    audio = np.concatenate([s.samples for s in segs])[: 30 * 16000]
    return str(engine.pipeline.model.detect_language(audio=audio)[0])  # type: ignore[attr-defined]


def detection_table(cfg: Settings, sets: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    print("| real speech | items | right, as shipped | CPU s each | right, full window alone | CPU s each |")
    print("|---|---|---|---|---|---|")
    for name, items in sets.items():
        row = []
        for method in (detect, full_window):
            started, right, wrong = time.process_time(), 0, []
            for lang, audio in items:
                found = method(cfg, [SegmentAudio(0, 0, 0.0, audio.size / 16000, audio)])
                right += found == lang
                if found != lang:
                    wrong.append(found)
            spent = (time.process_time() - started) / max(1, len(items))
            others = f" (else {', '.join(wrong)})" if wrong else ""
            row += [f"{right}{others}", f"{spent:.2f}"]
        print(f"| {name} | {len(items)} | {' | '.join(row)} |")
    print()


def main() -> int:
    cfg = Settings.from_env(torch_threads=1)
    sets = example_speech() | meeting_speech()
    if "--debian" in sys.argv:
        sets |= debian_speech(ROOT / ".hark" / "cache" / "languages")
    detection_table(cfg, sets)
    print("| language | detected | engine | WER | reference words |")
    print("|---|---|---|---|---|")
    for lang in PARAGRAPHS:
        audio, spans = paragraph_speech(lang)
        segs = [SegmentAudio(i, i, a, b, audio[int(a * 16000) : int(b * 16000)]) for i, (a, b) in enumerate(spans)]
        found = detect(cfg, segs)
        name, options = plan_asr(cfg, None, "whisper-tiny-en", {"language": found}, lambda rows: [])  # type: ignore[arg-type]
        results = get_engine(name, cfg).run_with_options(segs, options)
        ref = words(" ".join(PARAGRAPHS[lang]))
        hyp = words(" ".join(r.text or "" for r in results))
        print(f"| {lang} (espeak-ng) | {found} | {name} | {wer(ref, hyp):.1%} | {len(ref)} |")
    sample = STM.with_suffix(".wav")
    ref = words(" ".join(" ".join(line.split()[5:]) for line in STM.read_text().splitlines() if line.strip()))
    audio, spans = segments(sample, cfg)
    segs = [SegmentAudio(i, i, a, b, audio[int(a * 16000) : int(b * 16000)]) for i, (a, b) in enumerate(spans)]
    found = detect(cfg, segs)
    for name in ("whisper-tiny-en", "whisper-base"):
        engine = get_engine(name, cfg)
        hyp = words(" ".join(r.text or "" for r in engine.run_with_options(segs, {"language": "en"})))
        print(f"| en (real telephone sample) | {found} | {name} | {wer(ref, hyp):.1%} | {len(ref)} |")
    from synth import synth_meeting

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "meeting.wav"
        synth_meeting(path, speakers=3, minutes=5, seed=21)
        audio, spans = segments(path, cfg)
        hours = sum(b - a for a, b in spans) / 3600
        ref = reference_words(path) or []
        print("\n| engine | CPU s per audio hour (speech) | WER (generated English meeting) |")
        print("|---|---|---|")
        for name in ("whisper-tiny-en", "whisper-base"):
            engine = get_engine(name, cfg)
            # As in a job: the language known (detected once per recording), batches as prepare plans them.
            engine.run = lambda batch, engine=engine: engine.run_with_options(batch, {"language": "en"})  # type: ignore[method-assign]
            results, _, cpu = transcribe(engine, audio, spans, cfg)
            hyp = words(" ".join(r.text or "" for r in results))
            print(f"| {name} | {cpu / hours:.0f} | {wer(ref, hyp):.1%} |")
        started = time.process_time()
        segs = [SegmentAudio(i, i, a, b, audio[int(a * 16000) : int(b * 16000)]) for i, (a, b) in enumerate(spans)]
        detect(cfg, segs)
        spent = time.process_time() - started
        print(f"\nlanguage detection of one recording (first 30 s of speech): {spent:.2f} CPU s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
