"""SenseVoice-Small: speech recognition, language, speech emotion and audio events in one pass.

SenseVoice answers with "rich transcription" text: four tags, then the words, e.g.
`<|en|><|HAPPY|><|Speech|><|withitn|>Hello there.` (language, emotion, audio event, whether
inverse text normalisation was applied). `parse_rich` turns that into columns: language, emotion
(lower-case, Hark's vocabulary in worker/engines/base.py EMOTIONS), events, ITN flag and
the plain text. Emotion scores are the model's own posteriors at the emotion slot, read from the
CTC output layer of the same forward pass. Because the engine produces emotion, no separate
emotion task is planned for a job that uses it (see `worker.tasks.common.planned_kinds`).

The model loads from `HARK_SENSEVOICE_DIR` (iic/SenseVoiceSmall as published) through funasr.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from hark.audio import SAMPLE_RATE
from hark.settings import Settings
from worker.engines.base import PASS_S, Engine, SegmentAudio, SegmentResult, pass_seconds, pick_device, run_by_length
from worker.engines.funasr_models import generate, load_model, model_dir

log = logging.getLogger("hark.engines.sensevoice")
SETTING = "HARK_SENSEVOICE_DIR"
EMOTION_SOURCE = "acoustic:sensevoice-small"
EMOTIONS = {
    "HAPPY": "happy",
    "SAD": "sad",
    "ANGRY": "angry",
    "NEUTRAL": "neutral",
    "FEARFUL": "fearful",
    "DISGUSTED": "disgusted",
    "SURPRISED": "surprised",
}
UNKNOWN_EMOTION = "EMO_UNKNOWN"
EVENTS = {
    "BGM": "bgm",
    "Applause": "applause",
    "Laughter": "laughter",
    "Cry": "cry",
    "Cough": "cough",
    "Sneeze": "sneeze",
    "Breath": "breath",
    "Sing": "sing",
    "Speech_Noise": "speech_noise",
}
NOT_EVENTS = {"Speech", "Event_UNK", "GBG"}  # ordinary speech, or nothing recognised
ITN_TAGS = {"withitn": True, "woitn": False}
NO_SPEECH = "nospeech"
# Languages SenseVoice can be told to expect; anything else is detected ("auto").
LANGUAGES = ("zh", "en", "yue", "ja", "ko")
TAG = re.compile(r"<\|([^|<>]*)\|>")
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}")
MIN_SAMPLES = SAMPLE_RATE // 10  # shorter than one 60 ms output frame after framing: nothing to hear


@dataclass
class RichTranscript:
    """One SenseVoice answer, split into its parts."""

    text: str
    language: str | None = None
    emotion: str | None = None  # None: no tag, or <|EMO_UNKNOWN|>
    events: list[str] = field(default_factory=list)
    itn: bool | None = None
    speech: bool = True  # False for <|nospeech|>


def parse_rich(raw: str) -> RichTranscript:
    """Split SenseVoice's tagged output into columns. Tags may repeat or come in any order (the
    CTC output of a long clip can carry more than the leading four); unknown tags are dropped."""
    out = RichTranscript(text=TAG.sub("", raw).strip())
    for tag in TAG.findall(raw):
        if tag == NO_SPEECH:
            out.speech = False
        elif tag in EMOTIONS:
            out.emotion = out.emotion or EMOTIONS[tag]
        elif tag in EVENTS:
            if EVENTS[tag] not in out.events:
                out.events.append(EVENTS[tag])
        elif tag in ITN_TAGS:
            out.itn = ITN_TAGS[tag]
        elif tag == UNKNOWN_EMOTION or tag in NOT_EVENTS:
            continue
        elif LANGUAGE_TAG.fullmatch(tag) and out.language is None:
            out.language = tag
    return out


def spaced(word: str, first: bool) -> str:
    """A word as it reads in running text (Whisper's convention, which the transcript assembly
    concatenates): Latin-script words get a leading space, CJK characters and punctuation none."""
    if first or not word[:1].isascii() or not word[:1].isalnum():
        return word
    return " " + word


class SenseVoiceAsr(Engine):
    name: ClassVar[str] = "sensevoice-small"
    kind: ClassVar[str] = "asr"
    produces: ClassVar[frozenset[str]] = frozenset({"text", "language", "words", "emotion", "emotion_scores", "events"})
    consumes: ClassVar[frozenset[str]] = frozenset()
    job_options: ClassVar[frozenset[str]] = frozenset({"language", "itn"})

    def __init__(self) -> None:
        self.model: Any = None
        self.device = "cpu"
        self.itn = True
        self.batch_s = PASS_S["cpu"]
        self.emotion_ids: dict[str, int] = {}
        self._logits: torch.Tensor | None = None

    @classmethod
    def check(cls, settings: Settings) -> None:
        model_dir(settings.sensevoice_dir, SETTING)

    def load(self, settings: Settings) -> None:
        root = model_dir(settings.sensevoice_dir, SETTING)
        self.device = pick_device()
        self.model = load_model(root, self.device, settings.torch_threads, filterbank=True)
        self.itn = settings.sensevoice_itn
        self.batch_s = pass_seconds(settings.funasr_batch_s, self.device)
        sp = self.model.kwargs["tokenizer"].sp  # the SentencePiece model; tags are single pieces
        for tag, name in EMOTIONS.items():
            piece_id = sp.PieceToId(f"<|{tag}|>")
            if sp.IdToPiece(piece_id) == f"<|{tag}|>":
                self.emotion_ids[name] = piece_id
        # The CTC output layer's activations of the pass funasr runs: the emotion slot's scores.
        self.model.model.ctc.ctc_lo.register_forward_hook(self._keep_logits)

    def _keep_logits(self, module: Any, inputs: Any, output: torch.Tensor) -> None:
        if self._logits is None:
            self._logits = output.detach()

    def run(self, batch: list[SegmentAudio], options: dict[str, Any] | None = None) -> list[SegmentResult]:
        assert self.model is not None, "load() first"
        options = options or {}
        itn = bool(options.get("itn", self.itn))
        language = str(options["language"]) if options.get("language") in LANGUAGES else "auto"
        audible = [seg for seg in batch if len(seg.samples) >= MIN_SAMPLES]
        found = run_by_length(
            audible,
            [len(s.samples) / SAMPLE_RATE for s in audible],
            self.batch_s,
            lambda segs: self._forward(segs, itn, language),
        )
        by_id = {seg.segment_id: r for seg, r in zip(audible, found)}
        return [
            by_id.get(seg.segment_id) or SegmentResult(segment_id=seg.segment_id, text="", events=[]) for seg in batch
        ]

    def run_with_options(self, batch: list[SegmentAudio], options: dict[str, Any]) -> list[SegmentResult]:
        return self.run(batch, options)

    def _generate(self, segs: list[SegmentAudio], itn: bool, language: str, timestamps: bool) -> list[dict[str, Any]]:
        self._logits = None
        with torch.inference_mode():
            return generate(
                self.model,
                [seg.samples.astype(np.float32, copy=False) for seg in segs],
                language=language,
                use_itn=itn,
                output_timestamp=timestamps,
            )

    def _forward(self, segs: list[SegmentAudio], itn: bool, language: str) -> list[SegmentResult]:
        try:
            answers = self._generate(segs, itn, language, timestamps=True)
        except (IndexError, RuntimeError) as exc:
            # funasr's word alignment indexes tokens it re-encodes from the decoded text, and can
            # trip over an unusual answer; the transcript itself does not need it.
            log.warning("SenseVoice word timing failed, transcribing without it: %s", exc)
            answers = self._generate(segs, itn, language, timestamps=False)
        logits = self._logits if self._logits is not None and self._logits.shape[0] == len(segs) else None
        results = []
        for i, (seg, answer) in enumerate(zip(segs, answers)):
            rich = parse_rich(answer.get("text", ""))
            scores = self._emotion_scores(logits[i]) if logits is not None and rich.speech else None
            results.append(
                SegmentResult(
                    segment_id=seg.segment_id,
                    text=rich.text,
                    language=rich.language if rich.speech else None,
                    words=self._words(seg, answer),
                    emotion=rich.emotion,
                    emotion_scores=scores,
                    emotion_source=EMOTION_SOURCE if rich.speech else None,
                    events=rich.events,
                )
            )
        return results

    def _emotion_scores(self, logits: torch.Tensor) -> dict[str, float] | None:
        """Softmax over the emotion tags at output frame 1, the slot SenseVoice answers emotion in
        (frames 0-3: language, emotion, event, ITN)."""
        if not self.emotion_ids or logits.shape[0] < 2:
            return None
        names = list(self.emotion_ids)
        picked = logits[1, [self.emotion_ids[n] for n in names]].float()
        probs = torch.softmax(picked, dim=0).cpu().tolist()
        return {n: round(p, 4) for n, p in zip(names, probs)}

    @staticmethod
    def _words(seg: SegmentAudio, answer: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Word timings from funasr's CTC alignment (milliseconds from the clip's start)."""
        words, stamps = answer.get("words"), answer.get("timestamp")
        if not words or not stamps or len(words) != len(stamps):
            return None
        out: list[dict[str, Any]] = []
        for word, (start_ms, end_ms) in zip(words, stamps):
            if not word or TAG.fullmatch(word):
                continue
            out.append(
                {
                    "start": round(seg.start_s + start_ms / 1000, 3),
                    "end": round(min(seg.end_s, seg.start_s + end_ms / 1000), 3),
                    "word": spaced(word, not out),
                }
            )
        return out or None
