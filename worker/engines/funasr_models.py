"""Loading FunASR models from local directories, never from a hub.

The production FunASR engines (SenseVoice, Paraformer + CT-punc, CAM++, emotion2vec+) read a
model directory exactly as published on ModelScope / Hugging Face (`configuration.json` and/or
`config.yaml`, the weights, tokenizer and CMVN files) through funasr's own loader, `AutoModel`.
Hark checks the directory itself first and hands funasr an existing local path, so funasr's hub
code (which would download a missing model) is never reached; the update check is off and the
Hugging Face libraries are put in offline mode before funasr is imported.

funasr is an optional extra (`pip install hark[funasr]`). It does not need torchaudio: its
filterbank falls back to kaldi-native-fbank and audio arrives here as numpy arrays.
"""

from __future__ import annotations

import locale
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from worker.engines.base import require_model_dir

# Read by huggingface_hub / transformers, which funasr imports; ModelScope has no such switch,
# which is why only existing local paths ever reach funasr.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def model_dir(path: str, setting: str, weights: str = "model.pt", extra: tuple[str, ...] = ()) -> Path:
    """The checked model directory. Every FunASR model has `config.yaml`; `configuration.json`,
    where present, names the weights and tokenizer files (`file_path_metas`)."""
    return require_model_dir(path, setting, ["config.yaml", weights, *extra])


def config_model(path: str) -> str | None:
    """The funasr model class a model directory's config.yaml names (its `model:` entry, which is
    what funasr's loader instantiates), read without funasr or torch, so the web API can ask it
    too; None where the directory or its config.yaml cannot be read."""
    if not str(path).strip():
        return None  # unset: never read a config.yaml relative to the working directory
    try:
        config = yaml.safe_load((Path(path) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    model = config.get("model") if isinstance(config, dict) else None
    return model if isinstance(model, str) else None


def has_hotword_input(path: str) -> bool:
    """Whether the model directory holds a SeACo-Paraformer, the one Paraformer with a hotword
    input (a contextual bias encoder over a list of terms); plain and BiCif Paraformer have none."""
    return config_model(path) == "SeacoParaformer"


@contextmanager
def hotword_file(terms: list[str] | None) -> Iterator[str | None]:
    """SeACo-Paraformer's `hotword` argument for `terms`: a .txt file, one term per line (None
    for no terms).

    funasr also takes the terms as one string, but splits it at every space (a term of two words
    would become two terms), downloads it as a URL when it starts with "http" and reads it as a
    file when it names an existing .txt path, so job text never reaches funasr as that string. The
    file is written in the encoding funasr reads it with (it opens the file without naming one)."""
    if not terms:
        yield None
        return
    encoding = locale.getpreferredencoding(False)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding=encoding, errors="replace") as f:
        # One line per term, its inner whitespace (a newline included) collapsed: funasr splits a
        # line into words, and an empty line would be an empty term it cannot encode.
        f.write("".join(" ".join(term.split()) + "\n" for term in terms if term.split()))
        f.flush()
        yield f.name


def load_model(root: Path, device: str, threads: int = 0, filterbank: bool = False, **overrides: Any) -> Any:
    """funasr's AutoModel for a checked local directory, on `device`, with no network use.

    `filterbank`: the model reads funasr's filterbank front end (SenseVoice, Paraformer), which
    dithers (adds random noise) by default as in training; it is switched off, so a re-run of a
    task (a redelivery) writes the same answer. It has to be set here: AutoModel restores its
    configuration before every call."""
    if filterbank:
        overrides["frontend_conf"] = {**overrides.get("frontend_conf", {}), "dither": 0.0}
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import torch
    from funasr import AutoModel

    model = AutoModel(
        model=str(root),
        device=device,
        ncpu=threads or torch.get_num_threads(),
        hub="ms",
        check_latest=False,
        disable_update=True,
        disable_pbar=True,
        disable_log=True,
        log_level="WARNING",
        trust_remote_code=False,
        **overrides,
    )
    return model


def model_device(model: Any) -> str:
    """Where the model's weights are (for logs and tests)."""
    return next(model.model.parameters()).device.type


def generate(model: Any, clips: list[np.ndarray], **options: Any) -> list[dict[str, Any]]:
    """One padded forward pass over `clips` (float32, 16 kHz): funasr's answer for each clip, in
    order. A model that hears nothing in the whole batch answers less than one per clip (Paraformer
    returns a single empty result); then each clip is matched by its key where the answer carries
    one, else gets an empty answer."""
    keys = [f"clip{i}" for i in range(len(clips))]
    answers = model.generate(input=clips, key=keys, batch_size=len(clips), disable_pbar=True, **options)
    answers = [a for a in answers if isinstance(a, dict)]
    if len(answers) == len(clips):
        return answers
    by_key = {a["key"]: a for a in answers if isinstance(a.get("key"), str)}
    return [by_key.get(key, {}) for key in keys]
