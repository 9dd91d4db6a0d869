"""Whisper large-v3 through faster-whisper, from a local CTranslate2 model directory
(`HARK_WHISPER_LARGE_V3_DIR`, e.g. Systran's faster-whisper-large-v3).

The batched pipeline is the embedded engine's (`asr_whisper.WhisperAsr`); this class only names
the model directory, lets the model detect the language (large-v3 is multilingual), and refuses a
directory faster-whisper would complete from a hub: without `tokenizer.json` it fetches a
tokenizer, and without `preprocessor_config.json` it computes 80 mel bands where large-v3 takes
128. Both are checked before anything is loaded; a missing file is an error naming the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hark.settings import Settings
from worker.engines.asr_whisper import WhisperAsr
from worker.engines.base import require_model_dir

REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json", "preprocessor_config.json")


class WhisperLargeV3Asr(WhisperAsr):
    name: ClassVar[str] = "whisper-large-v3"
    english_only: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None

    def model_dir(self) -> Path:
        assert self.path is not None, "load() sets the model directory"
        return self.path

    @classmethod
    def check(cls, settings: Settings) -> Path:
        """The model directory, refused by path if it or a file faster-whisper needs is missing
        (a worker runs this at start, see `worker.engines.check_engines`)."""
        return require_model_dir(settings.whisper_large_v3_dir, "HARK_WHISPER_LARGE_V3_DIR", REQUIRED_FILES)

    def load(self, settings: Settings) -> None:
        self.path = self.check(settings)
        super().load(settings)
        assert self.pipeline is not None
        model = self.pipeline.model
        n_mels = model.feature_extractor.mel_filters.shape[0]
        if n_mels != model.model.n_mels:
            raise ValueError(
                f"{self.path}/preprocessor_config.json gives {n_mels} mel bands; the model takes {model.model.n_mels}"
            )
