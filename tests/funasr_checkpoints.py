"""Tiny FunASR checkpoints in the published on-disk formats, built in the tests.

The real weights cannot be downloaded here, so each builder instantiates funasr's own model class
with a tiny configuration, writes the directory the way ModelScope / Hugging Face publish it
(`configuration.json`, `config.yaml`, weights, tokenizer / token list, `am.mvn`) and lets the engine
load it through the same path production uses. Random weights answer noise; where a test needs a
known answer (SenseVoice's tags) the tiny model is first fitted for a few seconds to two kinds of
sound, voiced (harmonic tones and clips of the sample recording's speech) and hiss, with the
objective SenseVoice is trained with (cross-entropy on the four tag slots, CTC on the rest), so
the tags the engine parses really come out of the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

RATE = 16000
SENSEVOICE_TAGS = [
    "<|zh|>",
    "<|en|>",
    "<|yue|>",
    "<|ja|>",
    "<|ko|>",
    "<|nospeech|>",
    "<|HAPPY|>",
    "<|SAD|>",
    "<|ANGRY|>",
    "<|NEUTRAL|>",
    "<|FEARFUL|>",
    "<|DISGUSTED|>",
    "<|SURPRISED|>",
    "<|EMO_UNKNOWN|>",
    "<|Speech|>",
    "<|BGM|>",
    "<|Applause|>",
    "<|Laughter|>",
    "<|Cry|>",
    "<|Sneeze|>",
    "<|Breath|>",
    "<|Cough|>",
    "<|Event_UNK|>",
    "<|withitn|>",
    "<|woitn|>",
]
# What the fitted tiny SenseVoice answers for each kind of sound (tags: language, emotion, event).
VOICED_ANSWER = ("<|en|>", "<|HAPPY|>", "<|Laughter|>", "hello world")
HISS_ANSWER = ("<|zh|>", "<|SAD|>", "<|Cough|>", "good morning")
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample.wav"
# `published=True` builds a model at its model card's size (config.yaml dimensions and vocabulary)
# with random weights: it answers noise, but costs per second of audio what the real model costs,
# which is what bench/gpu_engines.py times where the real weights are not at hand.
SENSEVOICE_PUBLISHED = {
    "output_size": 512,
    "attention_heads": 4,
    "linear_units": 2048,
    "num_blocks": 50,
    "tp_blocks": 20,
}
SENSEVOICE_PUBLISHED_VOCAB = 25055
PARAFORMER_PUBLISHED = {"output_size": 512, "attention_heads": 4, "linear_units": 2048, "num_blocks": 50}
PARAFORMER_PUBLISHED_DECODER_BLOCKS = 16
PARAFORMER_PUBLISHED_VOCAB = 8404


def tone(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-like sound: a low harmonic tone with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 140 + 20 * rng.random()
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.2 * y / 2 + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    """A hiss: high-passed white noise."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(int(seconds * RATE))
    return (0.1 * np.diff(y, prepend=0.0)).astype(np.float32)


def _sample_speech() -> np.ndarray:
    import soundfile

    data, rate = soundfile.read(str(SAMPLE), dtype="float32", always_2d=True)
    assert rate == RATE
    return data.mean(axis=1)


def _pseudo_words(n: int, seed: int) -> list[str]:
    """Filler text for tokenizer training, so the vocabulary has a realistic number of pieces."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return [" ".join("".join(rng.choice(letters, rng.integers(2, 7))) for _ in range(5)) for _ in range(n)]


def _write(root: Path, config: dict[str, Any], configuration: dict[str, Any] | None, state: dict) -> None:
    import torch

    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if configuration is not None:
        (root / "configuration.json").write_text(json.dumps(configuration, indent=2))
    weights = (configuration or {}).get("file_path_metas", {}).get("init_param", "model.pt")
    torch.save(state, root / weights)


def _cmvn(root: Path, dim: int, means: np.ndarray, scales: np.ndarray) -> None:
    """am.mvn in Kaldi's nnet text format, as FunASR models ship it."""
    row = lambda v: " ".join(f"{x:.6f}" for x in v)  # noqa: E731
    (root / "am.mvn").write_text(
        f"<Nnet>\n<Splice> {dim} {dim}\n[ 0 ]\n<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {row(means)} ]\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {row(scales)} ]\n</Nnet>\n"
    )


def _frontend_conf() -> dict[str, Any]:
    return {
        "fs": RATE,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": 7,
        "lfr_n": 6,
    }


def _fit_cmvn(root: Path, clips: list[np.ndarray]) -> None:
    """Global mean / variance of the LFR features of `clips`, written as am.mvn."""
    import torch
    from funasr.frontends.wav_frontend import WavFrontend

    frontend = WavFrontend(cmvn_file=None, **_frontend_conf())
    feats, lens = frontend(
        torch.nn.utils.rnn.pad_sequence([torch.from_numpy(c) for c in clips], batch_first=True),
        torch.tensor([len(c) for c in clips]),
    )
    rows = torch.cat([feats[i, : lens[i]] for i in range(len(clips))]).numpy()
    _cmvn(root, rows.shape[1], -rows.mean(0), 1.0 / (rows.std(0) + 1e-5))


# --------------------------------------------------------------------------------------------
# SenseVoice-Small (iic/SenseVoiceSmall): model.pt, config.yaml, configuration.json, am.mvn and
# the SentencePiece model chn_jpn_yue_eng_ko_spectok.bpe.model whose pieces include the tags.

SENSEVOICE_BPE = "chn_jpn_yue_eng_ko_spectok.bpe.model"


def build_sensevoice(root: Path, steps: int = 200, seed: int = 0, published: bool = False) -> Path:
    import sentencepiece as spm
    import torch
    from funasr.frontends.wav_frontend import WavFrontend
    from funasr.register import tables
    from funasr.utils.load_utils import extract_fbank

    torch.manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    lines = 12000 if published else 400  # enough distinct pieces for the vocabulary
    corpus.write_text("\n".join([*["hello world", "good morning"] * 20, *_pseudo_words(lines, seed)]))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(root / SENSEVOICE_BPE.removesuffix(".model")),
        vocab_size=SENSEVOICE_PUBLISHED_VOCAB if published else 160,
        model_type="bpe",
        user_defined_symbols=SENSEVOICE_TAGS,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        character_coverage=1.0,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        minloglevel=2,
    )
    corpus.unlink()
    (root / SENSEVOICE_BPE.replace(".model", ".vocab")).unlink()
    sp = spm.SentencePieceProcessor(model_file=str(root / SENSEVOICE_BPE))

    rng = np.random.default_rng(seed)
    speech = _sample_speech()
    clips, answers = [], []
    for i in range(16):
        seconds = 0.4 + 1.4 * rng.random()
        if i % 2:
            clips.append(noise(seconds, seed=i)), answers.append(HISS_ANSWER)
        elif i % 4:
            clips.append(tone(seconds, seed=i)), answers.append(VOICED_ANSWER)
        else:
            at = int(rng.integers(0, len(speech) - int(seconds * RATE)))
            clips.append(speech[at : at + int(seconds * RATE)]), answers.append(VOICED_ANSWER)
    _fit_cmvn(root, clips)

    encoder_conf = {
        "output_size": 32,
        "attention_heads": 2,
        "linear_units": 64,
        "num_blocks": 2,
        "tp_blocks": 1,
        "dropout_rate": 0.0,
        "positional_dropout_rate": 0.0,
        "attention_dropout_rate": 0.0,
        "input_layer": "pe",
        "pos_enc_class": "SinusoidalPositionEncoder",
        "normalize_before": True,
        "kernel_size": 11,
        "sanm_shfit": 0,
        "selfattention_layer_type": "sanm",
        **(SENSEVOICE_PUBLISHED if published else {}),
    }
    config = {
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": encoder_conf,
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
        "frontend": "WavFrontend",
        "frontend_conf": {**_frontend_conf(), "cmvn_file": None},
    }
    frontend = WavFrontend(cmvn_file=str(root / "am.mvn"), **_frontend_conf())
    model = tables.model_classes["SenseVoiceSmall"](
        encoder="SenseVoiceEncoderSmall",
        encoder_conf=encoder_conf,
        input_size=560,
        vocab_size=sp.GetPieceSize(),
        **config["model_conf"],
    )
    _fit_sensevoice(model, frontend, sp, clips, answers, 0 if published else steps, extract_fbank)
    configuration = {
        "framework": "pytorch",
        "task": "auto-speech-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"bpemodel": SENSEVOICE_BPE},
            "frontend_conf": {"cmvn_file": "am.mvn"},
        },
    }
    _write(root, config, configuration, model.state_dict())
    return root


def _fit_sensevoice(model, frontend, sp, clips, answers, steps, extract_fbank) -> None:
    """SenseVoice's training objective on the tiny model: the four query frames (language, emotion,
    event, ITN; queries built as its inference builds them) learn the tags by cross-entropy, the
    speech frames learn the words by CTC. Both ITN queries are used, each with its own tag."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only wait on each other on a busy machine
    try:
        _fit_steps(model, frontend, sp, clips, answers, steps, extract_fbank)
    finally:
        torch.set_num_threads(threads)
    model.eval()


def _fit_steps(model, frontend, sp, clips, answers, steps, extract_fbank) -> None:
    import torch
    import torch.nn.functional as F

    feats, lens = extract_fbank([torch.from_numpy(c) for c in clips], frontend=frontend)
    itn_index = {"<|withitn|>": model.textnorm_dict["withitn"], "<|woitn|>": model.textnorm_dict["woitn"]}
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    n = len(clips)
    for step in range(steps):
        itn_tag = "<|withitn|>" if step % 2 else "<|woitn|>"
        queries = model.embed(torch.LongTensor([[0, 1, 2, itn_index[itn_tag]]])).repeat(n, 1, 1)
        x = torch.cat((queries, feats), dim=1)
        enc, enc_lens = model.encoder(x, lens + 4)
        logits = model.ctc.ctc_lo(enc)
        tags = torch.LongTensor([[sp.PieceToId(t) for t in (*a[:3], itn_tag)] for a in answers])
        loss_tags = F.cross_entropy(logits[:, :4].reshape(-1, logits.shape[-1]), tags.reshape(-1))
        words = [sp.EncodeAsIds(a[3]) for a in answers]
        loss_ctc = F.ctc_loss(
            F.log_softmax(logits[:, 4:], dim=-1).transpose(0, 1),
            torch.LongTensor([i for w in words for i in w]),
            enc_lens - 4,
            torch.LongTensor([len(w) for w in words]),
            blank=0,
            zero_infinity=True,
        )
        optimiser.zero_grad()
        (loss_tags + loss_ctc).backward()
        optimiser.step()


# --------------------------------------------------------------------------------------------
# Paraformer-large with timestamps (BiCifParaformer, as iic/speech_paraformer-large-vad-punc_asr_nat-
# zh-cn-16k-common-vocab8404-pytorch): model.pt, config.yaml, configuration.json, am.mvn, tokens.json.
# `seaco=True`: SeACo-Paraformer (as iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-
# vocab8404-pytorch), the same with a hotword bias encoder and decoder, and seg_dict (the word ->
# tokens map funasr splits hotwords with).

PARAFORMER_TOKENS = [
    "<blank>",
    "<s>",
    "</s>",
    "你",
    "好",
    "世",
    "界",
    "大",
    "家",
    "hello",
    "world",
    "good",
    "morning",
    "<unk>",
]


def build_paraformer(root: Path, seed: int = 0, published: bool = False, seaco: bool = False) -> Path:
    import torch
    from funasr.register import tables

    torch.manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    _fit_cmvn(root, [tone(1.0, seed), noise(1.0, seed)])
    tokens = list(PARAFORMER_TOKENS)
    if published:  # filler words before <unk>, up to the published vocabulary
        filler = _pseudo_words(PARAFORMER_PUBLISHED_VOCAB, seed)
        tokens[-1:] = list(dict.fromkeys(w.replace(" ", "") for w in filler))[
            : PARAFORMER_PUBLISHED_VOCAB - len(tokens)
        ] + ["<unk>"]
    (root / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False))
    d = PARAFORMER_PUBLISHED["output_size"] if published else 32
    blocks = PARAFORMER_PUBLISHED_DECODER_BLOCKS if published else 2
    config = {
        "model": "BiCifParaformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "output_size": d,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "dropout_rate": 0.0,
            "positional_dropout_rate": 0.0,
            "attention_dropout_rate": 0.0,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            **(PARAFORMER_PUBLISHED if published else {}),
        },
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {
            "attention_heads": 4 if published else 2,
            "linear_units": 2048 if published else 64,
            "num_blocks": blocks,
            "dropout_rate": 0.0,
            "positional_dropout_rate": 0.0,
            "self_attention_dropout_rate": 0.0,
            "src_attention_dropout_rate": 0.0,
            "att_layer_num": blocks,
            "kernel_size": 11,
            "sanm_shfit": 0,
        },
        "predictor": "CifPredictorV3",
        "predictor_conf": {
            "idim": d,
            "threshold": 1.0,
            "l_order": 1,
            "r_order": 1,
            "tail_threshold": 0.45,
            "smooth_factor2": 0.25,
            "noise_threshold2": 0.01,
            "upsample_times": 3,
            "use_cif1_cnn": False,
            "upsample_type": "cnn_blstm",
        },
        "frontend": "WavFrontend",
        "frontend_conf": {**_frontend_conf(), "cmvn_file": None},
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }
    if seaco:
        _seaco(root, config, tokens, d)
    model = tables.model_classes[config["model"]](
        **{
            k: v
            for k, v in config.items()
            if k not in ("model", "model_conf", "frontend", "frontend_conf", "tokenizer", "tokenizer_conf")
        },
        **config["model_conf"],
        input_size=560,
        vocab_size=len(tokens),
    )
    configuration = {
        "framework": "pytorch",
        "task": "auto-speech-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"token_list": "tokens.json"},
            "frontend_conf": {"cmvn_file": "am.mvn"},
        },
    }
    _write(root, config, configuration, model.state_dict())
    return root


def _seaco(root: Path, config: dict[str, Any], tokens: list[str], d: int) -> None:
    """BiCif Paraformer's config made SeACo-Paraformer's (its published config.yaml at tiny size),
    and its seg_dict: each word, then the tokens it is written with."""
    config["model"] = "SeacoParaformer"
    config["model_conf"].update(
        inner_dim=d,  # the bias encoder reads the decoder's token embeddings
        bias_encoder_type="lstm",
        bias_encoder_bid=False,
        seaco_lsm_weight=0.1,
        seaco_length_normalized_loss=True,
        train_decoder=True,
        # The token the bias decoder answers where no hotword applies (8377 of the published 8404).
        NO_BIAS=tokens.index("<unk>"),
    )
    config["seaco_decoder"] = "ParaformerSANMDecoder"
    config["seaco_decoder_conf"] = {
        "attention_heads": 2,
        "linear_units": 64,
        # No att_layer_num, as published: its default, 6 layers, is what the hotword filter reads
        # (forward_asf6, over 50 hotwords).
        "num_blocks": 4,
        "dropout_rate": 0.0,
        "positional_dropout_rate": 0.0,
        "self_attention_dropout_rate": 0.0,
        "src_attention_dropout_rate": 0.0,
        "kernel_size": 11,
        "sanm_shfit": 0,
        "use_output_layer": False,
        "wo_input_layer": True,
    }
    words = [t for t in tokens if not t.startswith("<")]
    (root / "seg_dict").write_text("".join(f"{w} {w}\n" for w in words), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# CT-Transformer punctuation (ct-punc): model.pt, config.yaml, configuration.json, tokens.json.

PUNC_TOKENS = ["<s>", "</s>", "你", "好", "世", "界", "大", "家", "hello", "world", "good", "morning", "<unk>"]


def build_punc(root: Path, seed: int = 0) -> Path:
    import torch
    from funasr.register import tables

    torch.manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokens.json").write_text(json.dumps(PUNC_TOKENS, ensure_ascii=False))
    d = 32
    config = {
        "model": "CTTransformer",
        "model_conf": {
            "ignore_id": 0,
            "embed_unit": d,
            "att_unit": d,
            "dropout_rate": 0.0,
            "punc_list": ["<unk>", "_", "，", "。", "？", "、"],
            "punc_weight": [1.0] * 6,
            "sentence_end_id": 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "input_size": d,
            "output_size": d,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 1,
            "dropout_rate": 0.0,
            "positional_dropout_rate": 0.0,
            "attention_dropout_rate": 0.0,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "padding_idx": 0,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }
    model = tables.model_classes["CTTransformer"](
        encoder=config["encoder"],
        encoder_conf=config["encoder_conf"],
        vocab_size=len(PUNC_TOKENS),
        **config["model_conf"],
    )
    configuration = {
        "framework": "pytorch",
        "task": "punctuation",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"token_list": "tokens.json"},
        },
    }
    _write(root, config, configuration, model.state_dict())
    return root


# --------------------------------------------------------------------------------------------
# CAM++ (iic/speech_campplus_sv_zh-cn_16k-common): campplus_cn_common.bin, config.yaml, configuration.json.


def build_campplus(root: Path, seed: int = 0, embedding_size: int = 16, published: bool = False) -> Path:
    import torch
    from funasr.register import tables

    torch.manual_seed(seed)
    conf = {
        "feat_dim": 80,
        "embedding_size": embedding_size,
        "growth_rate": 4,
        "bn_size": 2,
        "init_channels": 16,
        "config_str": "batchnorm-relu",
        "memory_efficient": True,
        "output_level": "segment",
    }
    if published:
        conf.update(embedding_size=192, growth_rate=32, bn_size=4, init_channels=128)
    model = tables.model_classes["CAMPPlus"](**conf)
    configuration = {
        "framework": "pytorch",
        "task": "speaker-verification",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": {"init_param": "campplus_cn_common.bin", "config": "config.yaml"},
    }
    _write(root, {"model": "CAMPPlus", "model_conf": conf}, configuration, model.state_dict())
    return root


# --------------------------------------------------------------------------------------------
# emotion2vec+ (iic/emotion2vec_plus_large / _base): model.pt, config.yaml, configuration.json and
# tokens.txt with its nine labels.

EMOTION2VEC_LABELS = [
    "生气/angry",
    "厌恶/disgusted",
    "恐惧/fearful",
    "开心/happy",
    "中立/neutral",
    "其他/other",
    "难过/sad",
    "吃惊/surprised",
    "<unk>",
]


def build_emotion2vec(root: Path, seed: int = 0) -> Path:
    import torch
    from funasr.register import tables

    torch.manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokens.txt").write_text("\n".join(EMOTION2VEC_LABELS) + "\n")
    d = 32
    audio = {
        "type": "AUDIO",
        "prenet_depth": 1,
        "prenet_layerdrop": 0.0,
        "prenet_dropout": 0.0,
        "start_drop_path_rate": 0.0,
        "end_drop_path_rate": 0.0,
        "num_extra_tokens": 10,
        "init_extra_token_zero": True,
        "mask_noise_std": 0.01,
        "mask_prob_min": None,
        "inverse_mask": False,
        "mask_prob": 0.7,
        "mask_prob_adjust": 0.05,
        "keep_masked_pct": 0.0,
        "mask_length": 5,
        "add_masks": False,
        "remove_masks": False,
        "mask_dropout": 0.0,
        "encoder_zero_mask": True,
        "mask_channel_prob": 0.0,
        "mask_channel_length": 64,
        "ema_local_encoder": False,
        "local_grad_mult": 1.0,
        "use_alibi_encoder": True,
        "alibi_scale": 1.0,
        "learned_alibi": False,
        "alibi_max_pos": None,
        "learned_alibi_scale": True,
        "learned_alibi_scale_per_head": True,
        "learned_alibi_scale_per_layer": False,
        "num_alibi_heads": 2,
        "model_depth": 2,
        "decoder": None,
        "extractor_mode": "layer_norm",
        "feature_encoder_spec": "[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16,2,2)] + [(16,2,2)]",
        "conv_pos_width": 95,
        "conv_pos_groups": 4,
        "conv_pos_depth": 2,
        "conv_pos_pre_ln": False,
    }
    model_conf = {
        "loss_beta": 0.0,
        "loss_scale": None,
        "depth": 2,
        "start_drop_path_rate": 0.0,
        "end_drop_path_rate": 0.0,
        "num_heads": 2,
        "norm_eps": 1e-05,
        "norm_affine": True,
        "encoder_dropout": 0.0,
        "post_mlp_drop": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "dropout_input": 0.0,
        "layerdrop": 0.0,
        "embed_dim": d,
        "mlp_ratio": 2.0,
        "layer_norm_first": False,
        "average_top_k_layers": 2,
        "end_of_block_targets": False,
        "clone_batch": 1,
        "layer_norm_target_layer": False,
        "batch_norm_target_layer": False,
        "instance_norm_target_layer": True,
        "instance_norm_targets": False,
        "layer_norm_targets": True,
        "ema_decay": 0.999,
        "ema_same_dtype": True,
        "log_norms": True,
        "ema_end_decay": 0.99999,
        "ema_encoder_only": False,
        "max_update": 100000,
        "min_target_var": 0.1,
        "min_pred_var": 0.01,
        "supported_modality": "AUDIO",
        "mae_init": False,
        "seed": 1,
        "skip_ema": False,
        "cls_loss": 1.0,
        "recon_loss": 0.0,
        "d2v_loss": 1.0,
        "decoder_group": False,
        "normalize": True,
        "modalities": {"audio": audio},
    }
    config = {
        "model": "Emotion2vec",
        "model_conf": model_conf,
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }
    model = tables.model_classes["Emotion2vec"](model_conf=model_conf, vocab_size=len(EMOTION2VEC_LABELS))
    configuration = {
        "framework": "pytorch",
        "task": "emotion-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"token_list": "tokens.txt"},
        },
    }
    _write(root, config, configuration, model.state_dict())
    return root
