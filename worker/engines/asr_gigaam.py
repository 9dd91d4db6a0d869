"""Russian speech recognition with GigaAM (v2 CTC and RNN-T checkpoints) from a local model dir.

Both engines encode a task's segments in padded batches sorted by length (`gigaam_model`) and
decode greedily, as the library does, but for the whole batch at once and keeping each token's
encoder frame and probability: that gives word timings (40 ms frames) for the reduce step to split
segments at speaker changes, and a confidence (geometric mean of the emitted tokens'
probabilities, like Whisper's exp(avg_logprob)). Each decoder is checked against the library's own
`decoding.decode` in the tests. GigaAM writes lower-case Russian without punctuation.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from hark.settings import Settings
from worker.engines.base import Engine, SegmentAudio, SegmentResult
from worker.engines.gigaam_model import Encoded, checkpoint_path, encode_batches, frame_seconds, load_gigaam


@dataclass
class Hypothesis:
    tokens: list[int]
    frames: list[int]  # encoder frame of each token
    logprobs: list[float]


class _GigaAmAsr(Engine):
    kind: ClassVar[str] = "asr"
    produces: ClassVar[frozenset[str]] = frozenset({"text", "language", "words"})
    consumes: ClassVar[frozenset[str]] = frozenset()
    setting: ClassVar[str]  # the Settings field naming the model directory
    head_class: ClassVar[str]  # the gigaam.decoder head the checkpoint must have

    def __init__(self) -> None:
        self.model: Any = None

    @classmethod
    def check(cls, settings: Settings) -> None:
        """Refuse a missing model directory or checkpoint by path, without loading it."""
        checkpoint_path(getattr(settings, cls.setting))

    def load(self, settings: Settings) -> None:
        model_dir = getattr(settings, self.setting)
        model = load_gigaam(model_dir, "asr")
        if type(model.head).__name__ != self.head_class:
            raise ValueError(
                f"{model_dir} holds a GigaAM {type(model.head).__name__} model; engine {self.name} needs "
                f"{self.head_class}"
            )
        self.model = model
        self.tokenizer = model.decoding.tokenizer
        self.blank_id = model.decoding.blank_id
        self.frame_s = frame_seconds(model)

    def decode(self, enc: Encoded) -> list[Hypothesis]:
        raise NotImplementedError

    def run(self, batch: list[SegmentAudio]) -> list[SegmentResult]:
        assert self.model is not None, "load() first"
        results: list[SegmentResult | None] = [None] * len(batch)
        for enc in encode_batches(self.model, [seg.samples for seg in batch]):
            for i, hyp in zip(enc.index, self.decode(enc)):
                results[i] = self.result(batch[i], hyp)
        return [r for r in results if r is not None]

    def piece(self, token: int) -> str:
        if self.tokenizer.charwise:
            return self.tokenizer.vocab[token]
        return self.tokenizer.model.id_to_piece(token)

    def result(self, seg: SegmentAudio, hyp: Hypothesis) -> SegmentResult:
        """Tokens → words: a space character (character vocabularies) or a piece starting with
        '▁' (SentencePiece) begins a new word."""
        groups: list[list[int]] = []  # positions in hyp of each word's tokens
        for pos, token in enumerate(hyp.tokens):
            piece = self.piece(token)
            if self.tokenizer.charwise and piece == " ":
                groups.append([])
            elif not groups or (not self.tokenizer.charwise and piece.startswith("▁")):
                groups.append([pos])
            else:
                groups[-1].append(pos)
        words = []
        for group in groups:
            text = self.tokenizer.decode([hyp.tokens[p] for p in group]).strip()
            if not text:
                continue
            start = seg.start_s + hyp.frames[group[0]] * self.frame_s
            end = min(seg.end_s, seg.start_s + (hyp.frames[group[-1]] + 1) * self.frame_s)
            p = math.exp(sum(hyp.logprobs[q] for q in group) / len(group))
            words.append(
                {"start": round(start, 3), "end": round(max(end, start), 3), "word": " " + text, "p": round(p, 3)}
            )
        confidence = math.exp(sum(hyp.logprobs) / len(hyp.logprobs)) if hyp.logprobs else None
        return SegmentResult(
            segment_id=seg.segment_id,
            text=" ".join(w["word"].strip() for w in words),
            language="ru",
            confidence=round(confidence, 4) if confidence is not None else None,
            words=words,
        )


class GigaAmCtcAsr(_GigaAmAsr):
    name: ClassVar[str] = "gigaam-ctc"
    setting: ClassVar[str] = "gigaam_ctc_dir"
    head_class: ClassVar[str] = "CTCHead"

    def decode(self, enc: Encoded) -> list[Hypothesis]:
        """Greedy CTC: the best class per frame, repeats merged, blanks dropped; each row only up
        to its own length (gigaam 0.1.0's batched decode masks the wrong axis there)."""
        with torch.inference_mode():
            log_probs = self.model.head(encoder_output=enc.encoded)  # (B, T, C)
            best, labels = log_probs.max(dim=-1)
        hyps = []
        for row, n in enumerate(enc.lengths.tolist()):
            lab = labels[row, :n]
            prev = torch.cat([lab.new_full((1,), -1), lab[:-1]])
            keep = (lab != self.blank_id) & (lab != prev)
            frames = torch.nonzero(keep).flatten()
            hyps.append(Hypothesis(lab[frames].tolist(), frames.tolist(), best[row, frames].tolist()))
        return hyps


class GigaAmRnntAsr(_GigaAmAsr):
    name: ClassVar[str] = "gigaam-rnnt"
    setting: ClassVar[str] = "gigaam_rnnt_dir"
    head_class: ClassVar[str] = "RNNTHead"

    def decode(self, enc: Encoded) -> list[Hypothesis]:
        """Greedy RNN-T over the batch in step: at each frame every row still emitting gets the
        joint's best token; a blank moves that row to the next frame, anything else is emitted and
        advances that row's prediction network (at most max_symbols per frame), as in the library's
        per-utterance loop."""
        head, blank = self.model.head, self.blank_id
        max_symbols = self.model.decoding.max_symbols
        x = enc.encoded.transpose(1, 2)  # (B, T, D)
        b = x.shape[0]
        hyps = [Hypothesis([], [], []) for _ in range(b)]
        lengths = enc.lengths.to(x.device)
        with torch.inference_mode(), _plain_lstm():
            g, state = head.decoder.predict(None, None, batch_size=b)
            for t in range(int(lengths.max()) if b else 0):
                f = x[:, t : t + 1, :]
                emitting = lengths > t
                for _ in range(max_symbols):
                    if not bool(emitting.any()):
                        break
                    logp, k = head.joint.joint(f, g)[:, 0, 0, :].max(dim=-1)
                    emitting = emitting & (k != blank)
                    if not bool(emitting.any()):
                        break
                    g_new, state_new = head.decoder.predict(k.unsqueeze(1), state)
                    g = torch.where(emitting[:, None, None], g_new, g)
                    state = tuple(_pick(emitting, new, old) for new, old in zip(state_new, state))
                    for row in torch.nonzero(emitting).flatten().tolist():
                        hyps[row].tokens.append(int(k[row]))
                        hyps[row].frames.append(t)
                        hyps[row].logprobs.append(float(logp[row]))
        return hyps


def _plain_lstm() -> AbstractContextManager[None]:
    """oneDNN's LSTM costs about 2 ms per call at these one-step shapes on CPU, ATen's about 0.3 ms
    (torch 2.13, measured); the decoder calls it once per emitted token."""
    return torch.backends.mkldnn.flags(enabled=False, deterministic=None, allow_tf32=None, fp32_precision=None)


def _pick(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """LSTM state (layers, B, H): rows in `mask` from `new`, the others from `old`."""
    return torch.where(mask[None, :, None], new, old)
