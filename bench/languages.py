"""Language detection and word error rate per language, and whisper-base's cost next to tiny.en's.

    python bench/languages.py

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

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from asr_quality import edit_distance, reference_words, segments, transcribe  # noqa: E402
from languages_speech import PARAGRAPHS, paragraph_speech  # noqa: E402

from hark.settings import Settings  # noqa: E402
from worker.engines import get_engine  # noqa: E402
from worker.engines.base import SegmentAudio  # noqa: E402
from worker.language import detect, plan_asr  # noqa: E402

STM = ROOT.parent / "shared" / "corpus" / "pyannote-sample" / "sample.stm"


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def wer(ref: list[str], hyp: list[str]) -> float:
    return edit_distance(ref, hyp) / max(1, len(ref))


def main() -> int:
    cfg = Settings.from_env(torch_threads=1)
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
