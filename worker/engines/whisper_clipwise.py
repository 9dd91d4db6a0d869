"""faster-whisper's model with the encoder and the word aligner run one clip at a time on a CPU.

The batched pipeline hands its three CTranslate2 calls (encode, generate, align) the same batch of
clips. Only the decoder gains from it on a CPU: its per-token matrix products are small, and eight
sequences at once keep the cores busy. The encoder's and the aligner's products are already large
for one clip, and a batch of eight only multiplies the attention matrices that must pass through
memory (six heads × 1500² floats per clip for tiny), so one clip at a time is cheaper for them and
gives the same text and word times. On a GPU the batch is what keeps it busy, so there nothing
changes.
"""

from __future__ import annotations

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer


class ClipwiseWhisperModel(WhisperModel):
    """A WhisperModel whose encode and find_alignment split a CPU batch into single clips."""

    def _one_at_a_time(self) -> bool:
        return self.model.device == "cpu"

    def encode(self, features: np.ndarray) -> ctranslate2.StorageView:
        if features.ndim == 2 or len(features) == 1 or not self._one_at_a_time():
            return super().encode(features)
        outputs = [np.asarray(WhisperModel.encode(self, features[i : i + 1])) for i in range(len(features))]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(outputs)))

    def find_alignment(
        self,
        tokenizer: Tokenizer,
        text_tokens: list,
        encoder_output: ctranslate2.StorageView,
        num_frames: int | list[int],
        median_filter_width: int = 7,
    ) -> list:
        if not isinstance(num_frames, list) or len(text_tokens) <= 1 or not self._one_at_a_time():
            return super().find_alignment(tokenizer, text_tokens, encoder_output, num_frames, median_filter_width)
        encoded = np.asarray(encoder_output)
        found: list = []
        for i, tokens in enumerate(text_tokens):
            if not tokens:  # nothing was said in this clip: no words, as the batched call gives
                found.append([])
                continue
            one = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[i : i + 1]))
            found += super().find_alignment(tokenizer, [tokens], one, [num_frames[i]], median_filter_width)
        return found
