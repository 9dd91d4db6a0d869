"""Tiny GigaAM checkpoints in the real on-disk format (`torch.save({"cfg", "state_dict"})`, the
config an OmegaConf DictConfig naming the library's classes), built from the gigaam library's own
model classes with random weights: what the GigaAM engine tests load through the production path."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from worker.engines.gigaam_model import gigaam_model_module

# GigaAM v2's character vocabulary: space and the Russian alphabet without ё (33 symbols; blank is 34th).
VOCABULARY = [" "] + [chr(c) for c in range(ord("а"), ord("я") + 1)]
EMOTIONS = ["angry", "sad", "neutral", "positive"]
D_MODEL = 16
SPACE_BIAS = 8.0


def _encoder(attention: str) -> dict:
    return {
        "_target_": "gigaam.encoder.ConformerEncoder",
        "feat_in": 64,
        "n_layers": 2,
        "d_model": D_MODEL,
        "subsampling_factor": 4,
        "ff_expansion_factor": 2,
        "self_attention_model": attention,
        "n_heads": 2,
        "pos_emb_max_len": 5000,
        "conv_kernel_size": 5,
        "flash_attn": False,
    }


def _config(kind: str) -> dict:
    cfg: dict = {
        "preprocessor": {"_target_": "gigaam.preprocess.FeatureExtractor", "sample_rate": 16000, "features": 64}
    }
    classes = len(VOCABULARY) + 1
    if kind == "ctc":
        cfg["encoder"] = _encoder("rotary")
        cfg["head"] = {"_target_": "gigaam.decoder.CTCHead", "feat_in": D_MODEL, "num_classes": classes}
        cfg["decoding"] = {"_target_": "gigaam.decoding.CTCGreedyDecoding", "vocabulary": VOCABULARY}
    elif kind == "rnnt":
        cfg["encoder"] = _encoder("rotary")
        cfg["head"] = {
            "_target_": "gigaam.decoder.RNNTHead",
            "decoder": {"pred_hidden": 12, "pred_rnn_layers": 1, "num_classes": classes},
            "joint": {"enc_hidden": D_MODEL, "pred_hidden": 12, "joint_hidden": 12, "num_classes": classes},
        }
        cfg["decoding"] = {
            "_target_": "gigaam.decoding.RNNTGreedyDecoding",
            "vocabulary": VOCABULARY,
            "max_symbols_per_step": 3,
        }
    else:  # GigaAM-Emo is a v1 model: relative-position attention, a linear head over pooled frames
        cfg["encoder"] = _encoder("rel_pos")
        cfg["head"] = {"_target_": "torch.nn.Linear", "in_features": D_MODEL, "out_features": len(EMOTIONS)}
        cfg["id2name"] = EMOTIONS
    return cfg


def build_model(kind: str, seed: int = 0) -> torch.nn.Module:
    """The library's GigaAMASR / GigaAMEmo with a tiny config and random weights (BatchNorm
    statistics and biases randomised too, so padding mistakes cannot hide behind zeros)."""
    torch.manual_seed(seed)
    module = gigaam_model_module()
    cfg = OmegaConf.create(_config(kind))
    model = (module.GigaAMEmo if kind == "emo" else module.GigaAMASR)(cfg)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.startswith("preprocessor.") or not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(("running_mean", "bias", "pos_bias_u", "pos_bias_v")):
                tensor.normal_(0.0, 0.1)
            elif "norm" in name and name.endswith("weight"):
                tensor.normal_(1.0, 0.5)
            elif name.startswith("head.") and name.endswith("weight"):
                tensor.mul_(8.0)  # sharper outputs: the decoded text changes with the audio
        if kind != "emo":  # favour the space character a little, so the text has several words
            final = model.head.decoder_layers[0] if kind == "ctc" else model.head.joint.joint_net[1]
            final.bias[0] += SPACE_BIAS
    return model.eval()


def write_checkpoint(model_dir: Path, kind: str, seed: int = 0, name: str | None = None) -> Path:
    """A model directory holding one checkpoint of `kind` ("ctc", "rnnt" or "emo")."""
    model = build_model(kind, seed)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / (name or {"ctc": "v2_ctc.ckpt", "rnnt": "v2_rnnt.ckpt", "emo": "v1_emo.ckpt"}[kind])
    torch.save({"cfg": model.cfg, "state_dict": model.state_dict()}, path)
    return path
