"""The FunASR engines on tiny checkpoints in their published on-disk formats (tests/funasr_checkpoints.py),
loaded through the engines' own production path (model directory → funasr's loader) with the
network cut off: loading, device placement, length-sorted batching and order, output parsing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hark.settings import Settings
from tests.conftest import refuse_network
from tests.funasr_checkpoints import (
    HISS_ANSWER,
    PARAFORMER_TOKENS,
    VOICED_ANSWER,
    build_campplus,
    build_emotion2vec,
    build_paraformer,
    build_punc,
    build_sensevoice,
    noise,
    tone,
)
from worker.engines.base import ModelDirMissing, SegmentAudio, run_engine
from worker.engines.funasr_models import model_device

pytestmark = pytest.mark.slow

RATE = 16000


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach a hub (or anything else) fails the test."""
    refuse_network(monkeypatch)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "sensevoice": build_sensevoice(root / "SenseVoiceSmall"),
        "paraformer": build_paraformer(root / "paraformer-large"),
        "seaco": build_paraformer(root / "seaco-paraformer", seaco=True),
        "punc": build_punc(root / "ct-punc"),
        "campplus": build_campplus(root / "campplus"),
        "emotion2vec": build_emotion2vec(root / "emotion2vec_plus_large"),
    }


@pytest.fixture(scope="module")
def cfg(dirs) -> Settings:
    return Settings(
        sensevoice_dir=str(dirs["sensevoice"]),
        paraformer_dir=str(dirs["paraformer"]),
        paraformer_punc_dir=str(dirs["punc"]),
        campplus_dir=str(dirs["campplus"]),
        emotion2vec_dir=str(dirs["emotion2vec"]),
        funasr_batch_s=4.0,  # small, so a batch of a few seconds needs several padded passes
    )


def segments(kinds_seconds: list[tuple[str, float]]) -> list[SegmentAudio]:
    """Segments of voiced tone / hiss laid out on a timeline, ids not in time order."""
    out, start = [], 3.0
    for i, (kind, seconds) in enumerate(kinds_seconds):
        samples = (tone if kind == "voiced" else noise)(seconds, seed=50 + i)
        out.append(
            SegmentAudio(segment_id=900 - 7 * i, idx=i, start_s=start, end_s=round(start + seconds, 3), samples=samples)
        )
        start = round(start + seconds + 0.5, 3)
    return out


MIXED = [("voiced", 1.2), ("hiss", 2.4), ("voiced", 0.6), ("hiss", 0.9), ("voiced", 2.9), ("hiss", 1.6)]


def load(cls, settings: Settings):
    engine = cls()
    engine.load(settings)
    return engine


def spy_batches(monkeypatch, module) -> list[list[float]]:
    """Record the clip lengths (seconds) of each forward pass the engine makes through funasr."""
    calls: list[list[float]] = []
    real = module.generate

    def spy(model, clips, **options):
        calls.append([len(c) / RATE for c in clips])
        return real(model, clips, **options)

    monkeypatch.setattr(module, "generate", spy)
    return calls


def check_batches(calls: list[list[float]], batch: list[SegmentAudio], limit: float) -> None:
    """Every segment went through exactly once, longest first, each pass within the padded limit."""
    flat = [s for call in calls for s in call]
    assert sorted(flat) == sorted(len(s.samples) / RATE for s in batch)
    assert flat == sorted(flat, reverse=True)
    assert len(calls) > 1
    for call in calls:
        assert len(call) == 1 or len(call) * max(call) <= limit


# ---- SenseVoice ------------------------------------------------------------------------------

REAL_TAGS = [
    (
        "<|en|><|HAPPY|><|Speech|><|withitn|>Hello there.",
        dict(text="Hello there.", language="en", emotion="happy", events=[], itn=True, speech=True),
    ),
    (
        "<|zh|><|NEUTRAL|><|Speech|><|woitn|>欢迎大家来体验达摩院推出的语音识别模型",
        dict(text="欢迎大家来体验达摩院推出的语音识别模型", language="zh", emotion="neutral", events=[], itn=False),
    ),
    (
        "<|en|><|EMO_UNKNOWN|><|Laughter|><|woitn|>ha ha that was good",
        dict(text="ha ha that was good", language="en", emotion=None, events=["laughter"], itn=False),
    ),
    (
        "<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|><|woitn|>",
        dict(text="", language=None, emotion=None, events=[], itn=False, speech=False),
    ),
    (
        "<|yue|><|SAD|><|BGM|><|withitn|>我哋今日去边度？",
        dict(text="我哋今日去边度？", language="yue", emotion="sad", events=["bgm"], itn=True),
    ),
    (
        "<|ja|><|ANGRY|><|Applause|><|withitn|>ありがとうございました。",
        dict(language="ja", emotion="angry", events=["applause"]),
    ),
    ("<|ko|><|SURPRISED|><|Cry|><|woitn|>정말요", dict(language="ko", emotion="surprised", events=["cry"])),
    (
        "<|en|><|FEARFUL|><|Cough|><|withitn|>Sorry.<|Sneeze|> Excuse me.",
        dict(text="Sorry. Excuse me.", emotion="fearful", events=["cough", "sneeze"]),
    ),
    ("<|en|><|DISGUSTED|><|Breath|><|woitn|>ugh", dict(emotion="disgusted", events=["breath"])),
]


@pytest.mark.parametrize("raw,expected", REAL_TAGS)
def test_sensevoice_tags_are_parsed_into_columns(raw, expected) -> None:
    from worker.engines.asr_sensevoice import parse_rich

    parsed = parse_rich(raw)
    for key, value in expected.items():
        assert getattr(parsed, key) == value, key
    assert "<|" not in parsed.text


def test_sensevoice_runs_length_sorted_batches_and_keeps_order(cfg, monkeypatch) -> None:
    import worker.engines.asr_sensevoice as module

    engine = load(module.SenseVoiceAsr, cfg)
    assert engine.device == "cpu" and model_device(engine.model) == "cpu"
    calls = spy_batches(monkeypatch, module)
    batch = segments(MIXED)
    results = engine.run(batch)

    check_batches(calls, batch, cfg.funasr_batch_s)
    assert [r.segment_id for r in results] == [s.segment_id for s in batch]
    assert engine.run(batch) == results  # no dither: a re-run (redelivery) writes the same answer
    for seg, r, (kind, _) in zip(batch, results, MIXED):
        language, emotion, event, text = VOICED_ANSWER if kind == "voiced" else HISS_ANSWER
        assert r.text == text
        assert r.language == language.strip("<|>")
        assert r.emotion == emotion.strip("<|>").lower()
        assert r.events == [event.strip("<|>").lower()]
        assert r.emotion_source == "acoustic:sensevoice-small"
        assert set(r.emotion_scores) == {"happy", "sad", "angry", "neutral", "fearful", "disgusted", "surprised"}
        assert abs(sum(r.emotion_scores.values()) - 1) < 1e-3
        assert max(r.emotion_scores, key=r.emotion_scores.get) == r.emotion
        assert r.words and "".join(w["word"] for w in r.words) == r.text
        assert all(seg.start_s <= w["start"] <= w["end"] <= seg.end_s for w in r.words)
        assert [w["start"] for w in r.words] == sorted(w["start"] for w in r.words)


def test_sensevoice_itn_follows_setting_and_job_option(cfg, monkeypatch) -> None:
    """The ITN flag reaches the model: its answer carries <|withitn|> or <|woitn|> accordingly."""
    import worker.engines.asr_sensevoice as module

    seen: list[tuple[bool, list[bool | None]]] = []
    real = module.generate

    def spy(model, clips, **options):
        answers = real(model, clips, **options)
        seen.append((options["use_itn"], [module.parse_rich(a["text"]).itn for a in answers]))
        return answers

    monkeypatch.setattr(module, "generate", spy)
    batch = segments([("voiced", 1.0), ("hiss", 1.0)])
    on = load(module.SenseVoiceAsr, cfg)
    off = load(module.SenseVoiceAsr, replace(cfg, sensevoice_itn=False))
    cases = [
        (on, {}, True),
        (on, {"itn": False, "num_speakers": 2}, False),
        (off, {}, False),
        (off, {"itn": True}, True),
    ]
    for engine, options, expected in cases:
        seen.clear()
        run_engine(engine, batch, options)
        assert seen and all(flag == expected and answers == [expected] * len(answers) for flag, answers in seen)


def test_sensevoice_too_short_segment_gets_an_empty_result(cfg) -> None:
    import worker.engines.asr_sensevoice as module

    engine = load(module.SenseVoiceAsr, cfg)
    batch = segments([("voiced", 1.0)])
    tiny = SegmentAudio(segment_id=5, idx=1, start_s=9.0, end_s=9.05, samples=np.zeros(800, dtype=np.float32))
    results = engine.run([tiny, *batch])
    assert results[0].segment_id == 5 and results[0].text == "" and results[0].emotion is None
    assert results[1].text == VOICED_ANSWER[3]


def test_sensevoice_transcribes_without_word_timings_when_alignment_fails(cfg, monkeypatch) -> None:
    import worker.engines.asr_sensevoice as module

    engine = load(module.SenseVoiceAsr, cfg)
    real = module.generate

    def alignment_trips(model, clips, **options):
        if options.get("output_timestamp"):
            raise IndexError("list index out of range")  # what funasr's aligner raises on odd tokens
        return real(model, clips, **options)

    monkeypatch.setattr(module, "generate", alignment_trips)
    results = engine.run(segments([("voiced", 1.1), ("hiss", 0.8)]))
    assert [r.text for r in results] == [VOICED_ANSWER[3], HISS_ANSWER[3]]
    assert all(r.words is None and r.emotion_scores for r in results)


# ---- Paraformer + punctuation ----------------------------------------------------------------


def test_paraformer_with_punctuation_batches_and_keeps_order(cfg, monkeypatch) -> None:
    import worker.engines.asr_paraformer as module

    engine = load(module.ParaformerAsr, cfg)
    assert model_device(engine.model) == "cpu" and model_device(engine.punc) == "cpu"
    calls = spy_batches(monkeypatch, module)
    batch = segments(MIXED)
    results = engine.run(batch)
    check_batches(calls, batch, cfg.funasr_batch_s)
    assert [r.segment_id for r in results] == [s.segment_id for s in batch]
    # The same segments handed over in another order: the same groups, so each segment gets the
    # same answer (random weights answer differently for each segment, so a mix-up would show).
    shuffled = engine.run(batch[::-1])
    assert {r.segment_id: r.text for r in shuffled} == {r.segment_id: r.text for r in results}
    assert len({r.text for r in results}) == len(results)
    for seg, r in zip(batch, results):
        assert r.text, "random weights still decode some tokens"
        assert r.text[-1] in ".?。？", r.text  # the punctuation model closes every segment
        assert r.words and "".join(w["word"] for w in r.words) == r.text
        assert all(seg.start_s <= w["start"] <= w["end"] <= seg.end_s for w in r.words)
        assert [w["start"] for w in r.words] == sorted(w["start"] for w in r.words)


def test_paraformer_without_punctuation_model(cfg) -> None:
    import worker.engines.asr_paraformer as module

    engine = load(module.ParaformerAsr, replace(cfg, paraformer_punc_dir=""))
    assert engine.punc is None
    assert not engine.reads_hotwords  # BiCif has no hotword input: a job's hotwords never reach it
    results = engine.run(segments(MIXED[:3]))
    for r in results:
        assert r.text and not set(r.text) & set(",.?，。？、")
        assert r.words and "".join(w["word"] for w in r.words) == r.text


# A URL first: funasr reads a hotword string that starts with "http" as a file to download (the
# network is refused here), so the engine hands it a file of terms instead; a term of two words
# stays one term.
HOTWORDS = ["https://example.invalid/terms.txt", "你好", "Hello World", "大家"]


def test_seaco_paraformer_tokenises_hotwords_and_biases_decoding(cfg, dirs) -> None:
    """SeACo-Paraformer gets the job's hotwords: funasr's own parsing turns them into the token
    lists its bias encoder reads (seg_dict splitting, lowercasing, unknown words as <unk>, the
    closing <s> entry), the bias decoder changes the answer, the next job without hotwords
    decodes as before (nothing carried over on the model), and the API's largest list runs."""
    from funasr.models.seaco_paraformer.model import SeacoParaformer

    import worker.engines.asr_paraformer as module

    engine = load(module.ParaformerAsr, replace(cfg, paraformer_dir=str(dirs["seaco"]), paraformer_punc_dir=""))
    assert isinstance(engine.model.model, SeacoParaformer) and engine.reads_hotwords
    batch = segments(MIXED[:4])
    plain = engine.run(batch)
    assert engine.model.model.hotword_list is None
    primed = run_engine(engine, batch, {"hotwords": HOTWORDS, "language": "zh", "itn": True})
    ids = PARAFORMER_TOKENS.index
    assert engine.model.model.hotword_list == [
        [ids("<unk>")],
        [ids("你"), ids("好")],
        [ids("hello"), ids("world")],
        [ids("大"), ids("家")],
        [ids("<s>")],
    ]
    assert [r.text for r in primed] != [r.text for r in plain]
    for seg, r in zip(batch, primed):
        assert r.segment_id == seg.segment_id
        assert r.words is None or "".join(w["word"] for w in r.words) == r.text
    again = engine.run(batch)
    assert engine.model.model.hotword_list is None
    assert [r.text for r in again] == [r.text for r in plain]
    # Over 50 terms (the API allows 100) funasr first keeps the 50 its filter scores highest.
    many = engine.run_with_options(batch[:1], {"hotwords": [f"term{i} 你好" for i in range(100)]})
    assert len(engine.model.model.hotword_list) == 101 and many[0].segment_id == batch[0].segment_id


def test_hotwords_are_accepted_at_the_api_for_seaco_paraformer_only(dirs, tmp_path) -> None:
    """The API reads HARK_PARAFORMER_DIR's config.yaml (the web process has the workers'
    settings): a SeACo directory accepts hotwords; a BiCif one, or one the web cannot read, is
    refused with a 400 naming the engine, whether the job names it or it is the default."""
    from flask import Flask

    from web.errors import ApiError
    from web.jobs import parse_options

    app = Flask(__name__)
    named = {"hotwords": "你好, Hello World", "engines": {"asr": "paraformer-large"}}
    for paraformer_dir, accepted in [(dirs["seaco"], True), (dirs["paraformer"], False), (tmp_path / "absent", False)]:
        settings = Settings(paraformer_dir=str(paraformer_dir), asr_engine="paraformer-large")
        app.extensions["hark.settings"] = settings
        with app.app_context():
            for raw in (named, {"hotwords": named["hotwords"]}):
                if accepted:
                    assert parse_options(raw)["hotwords"] == ["你好", "Hello World"]
                    continue
                with pytest.raises(ApiError) as err:
                    parse_options(raw)
                assert err.value.status == 400 and err.value.code == "invalid_options"
                assert err.value.message == "hotwords: the ASR engine 'paraformer-large' cannot use it"


def test_punctuation_is_attached_to_word_timings() -> None:
    from worker.engines.asr_paraformer import attach_punctuation, join_units, units

    pieces = units("欢 迎 大 家 hello world 你 好")
    assert pieces == ["欢", "迎", "大", "家", "hello", "world", "你", "好"]
    assert join_units(pieces) == "欢迎大家hello world你好"
    assert attach_punctuation(pieces, "欢迎，大家hello world.你好。") == [
        "欢",
        "迎，",
        "大",
        "家",
        "hello",
        " world.",
        "你",
        "好。",
    ]
    assert attach_punctuation(["so", "we", "start"], "So, we start.") == ["So,", " we", " start."]
    assert attach_punctuation(["a", "b"], "x a b") is None


# ---- CAM++ -----------------------------------------------------------------------------------


def test_campplus_windows_match_resemblyzer_and_batching_keeps_order(cfg) -> None:
    from worker.engines.speaker_campplus import CamPlusSpeaker
    from worker.engines.speaker_resemblyzer import ResemblyzerSpeaker

    engine = load(CamPlusSpeaker, cfg)
    assert model_device(engine.model) == "cpu"
    short = SegmentAudio(segment_id=1, idx=9, start_s=40.0, end_s=40.3, samples=tone(0.3))
    batch = [*segments(MIXED), short]
    results = engine.run(batch)
    assert [r.segment_id for r in results] == [s.segment_id for s in batch]
    assert results[-1].windows == []  # too short to embed, as with Resemblyzer

    reference = ResemblyzerSpeaker()
    reference.configure(cfg.speaker_window_s, cfg.speaker_hop_s)
    for seg, r in zip(batch, results):
        expected = [(w.start_s, w.end_s) for w in _resemblyzer_windows(reference, seg)]
        assert [(w.start_s, w.end_s) for w in r.windows] == expected
        for w in r.windows:
            assert w.vector.shape == (16,) and w.vector.dtype == np.float32 and np.isfinite(w.vector).all()
    for seg, r in zip(batch, results):
        alone = engine.run([seg])[0]
        for a, b in zip(r.windows, alone.windows):
            np.testing.assert_allclose(a.vector, b.vector, rtol=1e-4, atol=1e-6)
    # Different windows give different vectors (a mix-up of the order would be visible).
    vectors = np.stack([w.vector for r in results for w in r.windows])
    assert len({tuple(np.round(v, 6)) for v in vectors}) == len(vectors)


def _resemblyzer_windows(engine, seg):
    """The windows Resemblyzer's engine cuts, its network replaced by one that answers zeros."""
    import torch

    class Zeros:
        device = "cpu"

        def lstm(self, mels):
            return torch.zeros((mels.shape[0], mels.shape[1], 4)), None

        def linear(self, x):
            return x + 1.0

        def relu(self, x):
            return x

    engine.encoder = Zeros()
    return engine.run([seg])[0].windows


# ---- emotion2vec+ ----------------------------------------------------------------------------


def test_emotion2vec_scores_labels_and_order(cfg, monkeypatch) -> None:
    import worker.engines.emotion_emotion2vec as module

    engine = load(module.Emotion2vecEmotion, cfg)
    assert model_device(engine.model) == "cpu"
    calls = spy_batches(monkeypatch, module)
    batch = segments(MIXED)
    results = engine.run(batch)
    check_batches(calls, batch, cfg.funasr_batch_s)
    assert [r.segment_id for r in results] == [s.segment_id for s in batch]
    for seg, r in zip(batch, results):
        assert r.emotion_source == "acoustic:emotion2vec-plus"
        assert set(module.EMOTIONS) <= set(r.emotion_scores) <= set(module.EMOTIONS) | {"other", "unknown"}
        assert abs(sum(r.emotion_scores.values()) - 1) < 1e-3
        top = max(r.emotion_scores, key=r.emotion_scores.get)
        assert r.emotion == (top if top in module.EMOTIONS else None)
        assert r.emotion_scores == engine.run([seg])[0].emotion_scores


def test_emotion2vec_label_names() -> None:
    from worker.engines.emotion_emotion2vec import label_name

    assert label_name("生气/angry") == "angry"
    assert label_name("其他/other") == "other"
    assert label_name("<unk>") == "unknown"


# ---- model directories ------------------------------------------------------------------------

ENGINES = [
    ("worker.engines.asr_sensevoice:SenseVoiceAsr", "sensevoice_dir", "HARK_SENSEVOICE_DIR"),
    ("worker.engines.asr_paraformer:ParaformerAsr", "paraformer_dir", "HARK_PARAFORMER_DIR"),
    ("worker.engines.asr_paraformer:ParaformerAsr", "paraformer_punc_dir", "HARK_PARAFORMER_PUNC_DIR"),
    ("worker.engines.speaker_campplus:CamPlusSpeaker", "campplus_dir", "HARK_CAMPPLUS_DIR"),
    ("worker.engines.emotion_emotion2vec:Emotion2vecEmotion", "emotion2vec_dir", "HARK_EMOTION2VEC_DIR"),
]


@pytest.mark.parametrize("target,field,setting", ENGINES)
def test_missing_model_dir_is_a_clear_error_not_a_download(cfg, tmp_path, monkeypatch, target, field, setting) -> None:
    import importlib

    import funasr

    def no_hub(**kwargs):
        raise AssertionError("funasr was asked to load a model that is not there")

    monkeypatch.setattr(funasr, "AutoModel", no_hub)
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    missing = tmp_path / "not-provisioned"
    with pytest.raises(ModelDirMissing, match=f"{missing}.*{setting}"):
        cls().load(replace(cfg, **{field: str(missing)}))
    with pytest.raises(ModelDirMissing, match=setting):
        cls.check(replace(cfg, **{field: str(missing)}))
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.yaml").write_text("model: X\n")
    with pytest.raises(ModelDirMissing, match="lacks"):
        cls().load(replace(cfg, **{field: str(incomplete)}))


def test_padded_seconds_per_pass_follow_the_device_unless_set(cfg) -> None:
    """0 (the default) gives a GPU large passes and a CPU small ones; a set value wins on both, and
    a loaded engine uses the value for the device it landed on."""
    from worker.engines.base import PASS_S, pass_seconds
    from worker.engines.speaker_campplus import CamPlusSpeaker

    assert Settings().funasr_batch_s == 0
    assert pass_seconds(0, "cuda") == PASS_S["cuda"] > pass_seconds(0, "cpu") == PASS_S["cpu"]
    assert pass_seconds(7.5, "cuda") == pass_seconds(7.5, "cpu") == 7.5
    engine = load(CamPlusSpeaker, replace(cfg, funasr_batch_s=0.0))
    assert engine.batch_s == PASS_S[engine.device]
