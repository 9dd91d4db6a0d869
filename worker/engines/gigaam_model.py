"""Loading GigaAM checkpoints and running their encoder on padded batches: what the GigaAM ASR and
emotion engines share.

The model classes are the `gigaam` library's own (`gigaam.model.GigaAMASR`, `GigaAMEmo`, built
from the checkpoint's config). Three things differ from `gigaam.load_model`, each on purpose:

- The package is imported without running `gigaam/__init__.py`, which holds the downloader:
  nothing here can reach it, so a missing file is an error naming the path, never a download.
  `gigaam.preprocess` (which imports torchaudio) is replaced by `gigaam_features`.
- The checkpoint is read with `torch.load(weights_only=True)`, allowing OmegaConf's config
  classes only, and every model weight must be present (the library loads with strict=False and
  would run a mismatched checkpoint on random weights).
- Batches: signals are sorted by length and padded; the padded tail is zeroed after each strided
  subsampling convolution (gigaam 0.1.0 lets it leak into the last valid frames, fixed upstream
  later), so a segment encodes the same alone or in a batch.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hark.audio import SAMPLE_RATE
from worker.engines import gigaam_features
from worker.engines.base import pass_seconds, pick_device

log = logging.getLogger("hark.engines.gigaam")

INSTALL_HINT = "pip install -e '.[gigaam]' && pip install --no-deps gigaam==0.1.0"


def gigaam_model_module() -> Any:
    """The library's `gigaam.model`, imported as the module docstring explains."""
    if "gigaam.model" in sys.modules:
        return sys.modules["gigaam.model"]
    spec = importlib.util.find_spec("gigaam")
    if spec is None:
        raise ModuleNotFoundError(f"the GigaAM engines need the gigaam package ({INSTALL_HINT})")
    if "gigaam" not in sys.modules:
        sys.modules["gigaam"] = importlib.util.module_from_spec(spec)  # not executed: no downloader
    sys.modules.setdefault("gigaam.preprocess", gigaam_features)
    return importlib.import_module("gigaam.model")


def _omegaconf_globals() -> list[Any]:
    """Everything a pickled OmegaConf config refers to, for torch's weights-only unpickler."""
    import collections
    import typing

    from omegaconf import DictConfig, ListConfig, base, nodes

    node_types = [v for v in vars(nodes).values() if isinstance(v, type) and issubclass(v, nodes.Node)]
    # Metadata records key and element types, so plain builtin types appear as globals too.
    return [
        DictConfig,
        ListConfig,
        base.ContainerMetadata,
        base.Metadata,
        typing.Any,
        collections.defaultdict,
        dict,
        list,
        tuple,
        int,
        float,
        str,
        bool,
        bytes,
        *node_types,
    ]


def checkpoint_path(model_dir: str | Path) -> Path:
    """The one `*.ckpt` file in a model directory; a clear error naming the path otherwise."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"GigaAM model directory {path} does not exist (see docs/engines.md: provisioning)")
    found = sorted(path.glob("*.ckpt"))
    if len(found) != 1:
        what = "no *.ckpt file" if not found else f"{len(found)} *.ckpt files ({', '.join(p.name for p in found)})"
        raise FileNotFoundError(f"GigaAM model directory {path} must hold exactly one checkpoint; it has {what}")
    return found[0]


def load_gigaam(model_dir: str | Path, family: str, device: str | None = None) -> Any:
    """A GigaAM checkpoint from `model_dir` as the library's model class, in eval mode on `device`
    (default: pick_device()). `family` is "asr" or "emo"; the checkpoint must be of that family."""
    path = checkpoint_path(model_dir)
    model_module = gigaam_model_module()
    try:
        with torch.serialization.safe_globals(_omegaconf_globals()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path} is not a loadable GigaAM checkpoint: {exc}") from exc
    if not isinstance(checkpoint, dict) or not {"cfg", "state_dict"} <= set(checkpoint):
        raise ValueError(f"{path} is not a GigaAM checkpoint (expected a dict with cfg and state_dict)")
    cfg = checkpoint["cfg"]
    device = device or pick_device()
    if "flash_attn" in cfg.encoder:
        cfg.encoder.flash_attn = False  # an optional CUDA package; the plain attention is exact
    is_emo = "id2name" in cfg
    if (family == "emo") != is_emo:
        kind = "an emotion" if is_emo else "a speech recognition"
        raise ValueError(f"{path} holds {kind} checkpoint, not what this engine runs ({family})")
    if not is_emo and cfg.decoding.get("model_path"):  # SentencePiece vocabulary, not characters
        tokenizers = sorted(path.parent.glob("*tokenizer.model"))
        if not tokenizers:
            raise FileNotFoundError(f"{path} needs its SentencePiece tokenizer (*tokenizer.model) in {path.parent}")
        cfg.decoding.model_path = str(tokenizers[0])
    model = (model_module.GigaAMEmo if is_emo else model_module.GigaAMASR)(cfg)
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    missing = [k for k in missing if not k.startswith("preprocessor.")]
    if missing:
        raise ValueError(f"{path} lacks weights the model needs: {', '.join(missing[:5])}")
    if unexpected:
        log.warning("checkpoint has unused entries", extra={"path": str(path), "count": len(unexpected)})
    _mask_padding_in_subsampling(model.encoder.pre_encode)
    return model.eval().to(device)


def _mask_padding_in_subsampling(sub: Any) -> None:
    """Zero each signal's padded tail before and after every strided convolution of the encoder's
    subsampling, so padding never reaches valid frames (ReLU keeps zeros zero)."""
    state: dict[str, Tensor] = {}
    convs = [m for m in sub.conv if isinstance(m, (nn.Conv1d, nn.Conv2d))]

    def mask(x: Tensor, lengths: Tensor) -> Tensor:
        # x is (B, T, F) on entry, (B, C, T, F) after a conv: time is axis 1 or 2.
        axis = 1 if x.dim() == 3 else 2
        keep = torch.arange(x.shape[axis], device=x.device)[None, :] < lengths[:, None]
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        shape[axis] = x.shape[axis]
        return x * keep.view(shape).to(x.dtype)

    def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        state["lengths"] = kwargs["lengths"]
        return args, {**kwargs, "x": mask(kwargs["x"], kwargs["lengths"])}

    def after_conv(module: nn.Conv1d | nn.Conv2d, args: tuple, out: Tensor) -> Tensor:
        k, s, p = module.kernel_size[0], module.stride[0], int(module.padding[0])
        state["lengths"] = torch.div(state["lengths"] + 2 * p - k, s, rounding_mode="floor") + 1
        return mask(out, state["lengths"])

    sub.register_forward_pre_hook(before, with_kwargs=True)
    for conv in convs:
        conv.register_forward_hook(after_conv)


@dataclass
class Encoded:
    """Encoder output for some of a batch's signals: `index[i]` is the batch position of row i."""

    index: list[int]
    encoded: Tensor  # (B, D, T) float32
    lengths: Tensor  # (B,) valid frames per row


def encode_batches(model: Any, signals: list[np.ndarray]) -> list[Encoded]:
    """Encode float32 16 kHz signals in padded batches sorted by length (shortest first, at most
    `pass_seconds(0, device)` of padded audio each: 240 s on a GPU, 30 s on a CPU, where 240 s
    passes took a GigaAM-v2-sized encoder 1.6x as long). Signals too short for one analysis
    window are zero-padded to it."""
    device = next(model.parameters()).device
    limit = pass_seconds(0, device.type)
    minimum = model.preprocessor.min_samples
    order = sorted(range(len(signals)), key=lambda i: len(signals[i]))
    groups: list[list[int]] = []
    for i in order:
        n = max(len(signals[i]), minimum)
        if groups and n * (len(groups[-1]) + 1) <= limit * SAMPLE_RATE:
            groups[-1].append(i)
        else:
            groups.append([i])
    out = []
    with torch.inference_mode():
        for group in groups:
            lengths = [max(len(signals[i]), minimum) for i in group]
            wav = torch.zeros((len(group), max(lengths)), dtype=torch.float32)
            for row, i in enumerate(group):
                wav[row, : len(signals[i])] = torch.from_numpy(np.asarray(signals[i], dtype=np.float32))
            length_t = torch.tensor(lengths, device=device)
            encoded, encoded_len = model(wav.to(device), length_t)
            out.append(Encoded(group, encoded.float(), encoded_len.long()))
    return out


def frame_seconds(model: Any) -> float:
    """Seconds per encoder frame: the feature hop times the subsampling factor."""
    hop = model.preprocessor.hop_length / SAMPLE_RATE
    return hop * 2**model.encoder.pre_encode._sampling_num
