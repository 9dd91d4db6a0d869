"""GigaAM engines on tiny checkpoints in the real format (tests/gigaam_tiny.py), loaded through the
engines' own production path: loading, padded length-sorted batches, device, output parsing, and
agreement with the gigaam library's own decoding of each segment alone."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hark.settings import Settings
from tests.conftest import refuse_network
from tests.gigaam_tiny import EMOTIONS, VOCABULARY, build_model, write_checkpoint
from worker.engines import engine_class
from worker.engines.base import SegmentAudio, pick_device
from worker.engines.emotion_gigaam import TO_HARK
from worker.engines.gigaam_features import FeatureExtractor

pytestmark = pytest.mark.slow

HARK_EMOTIONS = {"happy", "sad", "angry", "neutral", "fearful", "disgusted", "surprised"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach a network (gigaam's downloader uses urllib) fails the test."""
    refuse_network(monkeypatch)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gigaam")
    for kind in ("ctc", "rnnt", "emo"):
        write_checkpoint(root / kind, kind)
    return {kind: root / kind for kind in ("ctc", "rnnt", "emo")}


@pytest.fixture(scope="module")
def settings(model_dirs) -> Settings:
    return Settings(
        gigaam_ctc_dir=str(model_dirs["ctc"]),
        gigaam_rnnt_dir=str(model_dirs["rnnt"]),
        gigaam_emo_dir=str(model_dirs["emo"]),
    )


def _signal(seconds: float, seed: int) -> np.ndarray:
    """A gliding, pulsing tone with a little noise: frames differ, so decoded text does too."""
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 150 + 250 * seed
    tone = 0.3 * np.sin(2 * np.pi * (f0 + 300 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (tone + 0.02 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


# Lengths deliberately out of order; the 0.05 s one is shorter than one analysis window.
LENGTHS = [1.3, 0.4, 2.7, 0.05, 1.0, 1.9]


@pytest.fixture(scope="module")
def batch() -> list[SegmentAudio]:
    return [SegmentAudio(100 + i, i, 10.0 * i, 10.0 * i + n, _signal(n, i)) for i, n in enumerate(LENGTHS)]


def _loaded(name: str, settings: Settings):
    engine = engine_class(name)()
    engine.load(settings)
    return engine


def _record_forward_batches(model) -> list[list[int]]:
    """Wrap the model's forward to record each call's signal lengths."""
    calls: list[list[int]] = []
    forward = model.forward

    def recording(wav, lengths):
        calls.append(lengths.tolist())
        return forward(wav, lengths)

    model.forward = recording
    return calls


def _library_single(model, samples: np.ndarray):
    """The library's own path for one signal (GigaAM.forward on a batch of one)."""
    wav = torch.from_numpy(samples)[None]
    if wav.shape[1] < model.preprocessor.min_samples:
        wav = torch.nn.functional.pad(wav, (0, model.preprocessor.min_samples - wav.shape[1]))
    with torch.inference_mode():
        return model(wav, torch.tensor([wav.shape[1]]))


def test_log_mel_features_match_librosa_reference() -> None:
    """The torchaudio-free front end gives the numbers of torchaudio's MelSpectrogram with
    gigaam's arguments; librosa (HTK mel scale, no normalisation) is the independent reference."""
    import librosa

    samples = _signal(1.1, 3)
    feats, frames = FeatureExtractor(16000, 64)(torch.from_numpy(samples)[None], torch.tensor([len(samples)]))
    ref = librosa.feature.melspectrogram(
        y=samples.astype(np.float64),
        sr=16000,
        n_fft=400,
        hop_length=160,
        win_length=400,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=64,
        fmin=0.0,
        fmax=8000.0,
        htk=True,
        norm=None,
    )
    assert int(frames[0]) == ref.shape[1] == len(samples) // 160 + 1
    np.testing.assert_allclose(feats[0].numpy(), np.log(np.clip(ref, 1e-9, 1e9)), atol=2e-3)


def test_padded_frames_do_not_change_a_signals_features() -> None:
    extractor = FeatureExtractor(16000, 64)
    short, long = _signal(0.5, 1), _signal(1.5, 2)
    wav = torch.zeros(2, len(long))
    wav[0, : len(short)], wav[1] = torch.from_numpy(short), torch.from_numpy(long)
    batched, frames = extractor(wav, torch.tensor([len(short), len(long)]))
    alone, _ = extractor(torch.from_numpy(short)[None], torch.tensor([len(short)]))
    n = int(frames[0])
    assert torch.equal(batched[0, :, :n], alone[0]) and not batched[0, :, n:].any()


@pytest.mark.parametrize("name", ["gigaam-ctc", "gigaam-rnnt"])
def test_asr_engine_runs_sorted_padded_batches_and_agrees_with_the_library(name, settings, batch) -> None:
    engine = _loaded(name, settings)
    model = engine.model
    assert next(model.parameters()).device.type == pick_device() == "cpu"
    assert model.training is False
    calls = _record_forward_batches(model)
    results = engine.run(batch)
    # One padded forward pass for the whole batch, signals sorted shortest first.
    minimum = model.preprocessor.min_samples
    assert calls == [sorted(max(len(s.samples), minimum) for s in batch)]
    assert [r.segment_id for r in results] == [s.segment_id for s in batch]
    texts = [r.text for r in results]
    assert len(set(texts)) >= 4, texts  # outputs depend on the audio, so a mix-up would show
    for seg, result in zip(batch, results):
        assert result.language == "ru"
        assert isinstance(result.text, str) and set(result.text) <= set(VOCABULARY)
        assert result.confidence is None or 0.0 < result.confidence <= 1.0
        assert "".join(w["word"] for w in result.words).strip() == result.text
        for w in result.words:
            assert w["word"].startswith(" ") and " " not in w["word"][1:]
            assert seg.start_s <= w["start"] <= w["end"] <= seg.end_s + 1e-6
            assert 0.0 <= w["p"] <= 1.0
        # The library decoding this segment alone (a batch of one, where its own batching is moot).
        encoded, encoded_len = _library_single(model, seg.samples)
        (expected,) = model.decoding.decode(model.head, encoded, encoded_len)
        assert result.text == " ".join(expected.split())
    assert sum(len(r.words) for r in results) > len(results)  # several words, so grouping is exercised
    # Each segment alone gives exactly what it gave inside the padded batch.
    for seg, result in zip(batch, results):
        (alone,) = engine.run([seg])
        assert (alone.text, alone.words, alone.confidence) == (result.text, result.words, result.confidence)


def test_emotion_engine_maps_classes_keeps_raw_scores_and_pools_each_row_alone(settings, batch) -> None:
    engine = _loaded("gigaam-emo", settings)
    assert engine.kind == "emotion" and engine.consumes == frozenset()
    model = engine.model
    assert next(model.parameters()).device.type == "cpu"
    calls = _record_forward_batches(model)
    results = engine.run(batch)
    assert len(calls) == 1 and calls[0] == sorted(calls[0]) and len(calls[0]) == len(batch)
    assert [r.segment_id for r in results] == [s.segment_id for s in batch]
    assert len({tuple(r.emotion_scores.values()) for r in results}) == len(batch)
    for seg, result in zip(batch, results):
        assert list(result.emotion_scores) == EMOTIONS
        assert sum(result.emotion_scores.values()) == pytest.approx(1.0, abs=1e-3)
        top = max(result.emotion_scores, key=lambda k: result.emotion_scores[k])
        assert result.emotion == TO_HARK[top] and result.emotion in HARK_EMOTIONS
        assert result.emotion_source == "acoustic:gigaam-emo"
        assert result.text is None
        # The library's get_probs computation on this segment alone: mean over all frames, head, softmax.
        encoded, _ = _library_single(model, seg.samples)
        pooled = torch.nn.functional.avg_pool1d(encoded, kernel_size=encoded.shape[-1]).squeeze(-1)
        probs = torch.softmax(model.head(pooled)[0], dim=-1).tolist()
        assert [result.emotion_scores[k] for k in EMOTIONS] == pytest.approx(probs, abs=2e-4)
    assert TO_HARK == {"angry": "angry", "sad": "sad", "neutral": "neutral", "positive": "happy"}


@pytest.mark.parametrize(
    "name,field",
    [("gigaam-ctc", "gigaam_ctc_dir"), ("gigaam-rnnt", "gigaam_rnnt_dir"), ("gigaam-emo", "gigaam_emo_dir")],
)
def test_missing_model_directory_names_the_path_and_never_downloads(name, field, tmp_path) -> None:
    missing = tmp_path / "not-provisioned"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        _loaded(name, Settings(**{field: str(missing)}))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"{empty}.*no \\*.ckpt"):
        _loaded(name, Settings(**{field: str(empty)}))
    # gigaam/__init__.py (which holds the downloader) was never executed in this process.
    assert "_download_model" not in vars(sys.modules["gigaam"])
    assert "load_model" not in vars(sys.modules["gigaam"])


def test_checkpoints_of_the_wrong_kind_or_incomplete_are_refused(model_dirs, tmp_path) -> None:
    with pytest.raises(ValueError, match="emotion checkpoint"):
        _loaded("gigaam-ctc", Settings(gigaam_ctc_dir=str(model_dirs["emo"])))
    with pytest.raises(ValueError, match="speech recognition checkpoint"):
        _loaded("gigaam-emo", Settings(gigaam_emo_dir=str(model_dirs["ctc"])))
    with pytest.raises(ValueError, match="CTCHead"):
        _loaded("gigaam-rnnt", Settings(gigaam_rnnt_dir=str(model_dirs["ctc"])))
    model = build_model("ctc")
    state = model.state_dict()
    del state["head.decoder_layers.0.weight"]
    (tmp_path / "cut").mkdir()
    torch.save({"cfg": model.cfg, "state_dict": state}, tmp_path / "cut" / "v2_ctc.ckpt")
    with pytest.raises(ValueError, match="lacks weights.*head.decoder_layers.0.weight"):
        _loaded("gigaam-ctc", Settings(gigaam_ctc_dir=str(tmp_path / "cut")))
    # Only tensors and OmegaConf's config classes are unpickled: anything else is refused unrun.
    (tmp_path / "odd").mkdir()
    torch.save(
        {"cfg": model.cfg, "state_dict": state, "extra": datetime.date(2024, 12, 13)}, tmp_path / "odd" / "x.ckpt"
    )
    with pytest.raises(ValueError, match=f"{tmp_path / 'odd' / 'x.ckpt'} is not a loadable GigaAM checkpoint"):
        _loaded("gigaam-ctc", Settings(gigaam_ctc_dir=str(tmp_path / "odd")))
    (tmp_path / "odd" / "y.ckpt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="exactly one checkpoint.*2 \\*.ckpt files"):
        _loaded("gigaam-ctc", Settings(gigaam_ctc_dir=str(tmp_path / "odd")))


def test_sentencepiece_checkpoint_uses_the_tokenizer_file_in_its_directory(tmp_path, batch) -> None:
    """Checkpoints with a SentencePiece vocabulary (v1 RNN-T) keep it next to the .ckpt."""
    import io

    import sentencepiece as spm
    from omegaconf import OmegaConf

    from worker.engines.gigaam_model import gigaam_model_module

    text = ["привет как дела", "сегодня хорошая погода", "мы обсуждаем новый проект", "до свидания друзья"] * 20
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=buf, vocab_size=40, model_type="bpe")
    model_dir = tmp_path / "v1_rnnt"
    model_dir.mkdir()
    (model_dir / "v1_rnnt_tokenizer.model").write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    torch.manual_seed(1)
    cfg = OmegaConf.create(build_model("ctc").cfg)
    cfg.head.num_classes = len(sp) + 1
    cfg.decoding = {
        "_target_": "gigaam.decoding.CTCGreedyDecoding",
        "vocabulary": [],
        "model_path": str(model_dir / "v1_rnnt_tokenizer.model"),
    }
    model = gigaam_model_module().GigaAMASR(cfg)
    cfg.decoding.model_path = "/where/it/was/trained/tokenizer.model"  # the engine must not use this
    torch.save({"cfg": cfg, "state_dict": model.state_dict()}, model_dir / "v1_ctc.ckpt")
    engine = _loaded("gigaam-ctc", Settings(gigaam_ctc_dir=str(model_dir)))
    assert engine.tokenizer.charwise is False
    results = engine.run(batch)
    assert any(r.words for r in results)
    for r in results:
        assert "".join(w["word"] for w in r.words).strip() == r.text
        assert all(w["word"][1:] and " " not in w["word"][1:] for w in r.words)
    (model_dir / "v1_rnnt_tokenizer.model").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        _loaded("gigaam-ctc", Settings(gigaam_ctc_dir=str(model_dir)))


def test_encoder_passes_hold_at_most_the_devices_padded_seconds() -> None:
    """Signals are grouped shortest first into passes of at most `pass_seconds(0, device)` padded
    seconds (30 on a CPU), every signal encoded exactly once."""
    from worker.engines.base import pass_seconds
    from worker.engines.gigaam_model import encode_batches

    model = build_model("ctc").eval()
    rng = np.random.default_rng(3)
    lengths = [4.0, 9.5, 2.0, 7.0, 12.0, 3.0, 6.5, 11.0]
    signals = [(0.05 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in lengths]
    passes = encode_batches(model, signals)
    limit = pass_seconds(0, "cpu")
    assert sorted(i for p in passes for i in p.index) == list(range(len(signals)))
    for p in passes:
        padded = len(p.index) * max(lengths[i] for i in p.index)
        assert padded <= limit or len(p.index) == 1, (p.index, padded)
    assert len(passes) > 1 and max(len(p.index) for p in passes) > 1
