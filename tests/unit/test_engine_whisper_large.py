"""whisper-large-v3 on a tiny random Whisper in the real faster-whisper (CTranslate2) format with
large-v3's vocabulary layout and 128 mel bands (tests/whisper_tiny.py), through the engine's
production path; and the refusals that keep faster-whisper from completing a directory from a hub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hark.settings import Settings
from tests.conftest import refuse_network
from tests.whisper_tiny import write_model
from worker.engines import engine_class
from worker.engines.base import SegmentAudio

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Reaching a network, or asking faster-whisper / tokenizers for hub files, fails the test."""
    import faster_whisper.transcribe
    import tokenizers

    def refuse(*args, **kwargs):
        raise AssertionError(f"hub access attempted: {args[:2]}")

    refuse_network(monkeypatch)
    monkeypatch.setattr(faster_whisper.transcribe, "download_model", refuse)
    monkeypatch.setattr(tokenizers.Tokenizer, "from_pretrained", refuse)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("whisper")
    return write_model(work / "faster-whisper-tiny-random", work)


def _engine(path: Path):
    engine = engine_class("whisper-large-v3")()
    engine.load(Settings(whisper_large_v3_dir=str(path)))
    return engine


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * (180 + 90 * seed) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_large_v3_engine_loads_the_directory_and_runs_a_multilingual_batch(model_dir) -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    engine = _engine(model_dir)
    whisper = engine.pipeline.model
    assert whisper.model.device == "cpu"
    assert whisper.model.is_multilingual and whisper.model.n_mels == 128
    assert whisper.feature_extractor.mel_filters.shape[0] == 128
    assert engine.english_only is False and engine.name == "whisper-large-v3"
    lengths = [2.2, 0.6, 3.1, 1.2]  # out of order
    batch = [SegmentAudio(7 + i, i, 5.0 * i, 5.0 * i + n, _speechlike(n, i)) for i, n in enumerate(lengths)]
    asked: list[dict] = []
    transcribe = engine.pipeline.transcribe
    engine.pipeline.transcribe = lambda audio, **kw: asked.append(kw) or transcribe(audio, **kw)
    results = engine.run(batch)
    assert [kw["language"] for kw in asked] == [None]  # detected by the model, not forced to English
    assert [r.segment_id for r in results] == [s.segment_id for s in batch]
    assert any(r.text for r in results)
    for _seg, result in zip(batch, results):
        assert result.language in _LANGUAGE_CODES
        assert isinstance(result.text, str)
        assert result.confidence is None or 0.0 <= result.confidence <= 1.0
        assert "".join(w["word"] for w in result.words).strip() == result.text.strip()
        # Random weights put timestamp tokens anywhere, so only the words' form is checked here.
        assert all(isinstance(w["start"], float) and w["start"] <= w["end"] for w in result.words)
    assert len({r.text for r in results}) > 1  # each segment decoded from its own audio


@pytest.mark.parametrize("missing", ["tokenizer.json", "preprocessor_config.json", "model.bin", "config.json"])
def test_an_incomplete_directory_is_refused_naming_the_path(model_dir, tmp_path, missing) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(model_dir, partial)
    (partial / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"{partial} .*lacks {missing}"):
        _engine(partial)


def test_a_missing_directory_is_refused_naming_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        _engine(tmp_path / "nowhere")


def test_mel_bands_must_match_the_model(model_dir, tmp_path) -> None:
    """An 80-band preprocessor config (large-v2's) next to a 128-band model is refused at load."""
    wrong = tmp_path / "wrong"
    shutil.copytree(model_dir, wrong)
    config = json.loads((wrong / "preprocessor_config.json").read_text())
    (wrong / "preprocessor_config.json").write_text(json.dumps({**config, "feature_size": 80}))
    with pytest.raises(ValueError, match="80 mel bands; the model takes 128"):
        _engine(wrong)
