"""Transcript exports rendered from one JSON document: json, srt, vtt, txt, rttm.

Subtitles (srt, vtt) are cut into readable cues at word boundaries from the word timings, each
with its speaker label; `CueLimits` says how long a line, how many lines and how long on screen.

The reduce task builds the document once and writes every format to `out/<job>/`; the API serves
those objects, so a finished job's exports never change under a reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FORMATS = {
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "txt": "text/plain; charset=utf-8",
    "rttm": "text/plain; charset=utf-8",
}


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def who(u: dict[str, Any]) -> str:
    """An utterance's speaker as a reader sees it: the enrolled person's name when matched."""
    return u.get("person") or u["speaker"]


def with_people(doc: dict[str, Any], people: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The document with each speaker's person (label → {"person", "person_score",
    "person_source"}; a label not given is anonymous) on its speaker entry and utterances."""
    blank = {"person": None, "person_score": None, "person_source": None}
    for sp in doc.get("speakers", []):
        sp.update(people.get(sp["label"], blank))
    for u in doc.get("utterances", []):
        u["person"] = people.get(u["speaker"], blank)["person"]
    return doc


@dataclass(frozen=True)
class CueLimits:
    """How much text one subtitle cue may show: readable subtitles keep lines short (42 characters
    is the common broadcast limit), at most two lines, and a cue on screen at most 7 seconds."""

    max_line_chars: int = 42
    max_lines: int = 2
    max_cue_s: float = 7.0

    def __post_init__(self) -> None:
        if not 10 <= self.max_line_chars <= 200:
            raise ValueError("max_line_chars must be between 10 and 200")
        if not 1 <= self.max_lines <= 5:
            raise ValueError("max_lines must be between 1 and 5")
        if not 1.0 <= self.max_cue_s <= 60.0:
            raise ValueError("max_cue_s must be between 1 and 60 seconds")


@dataclass
class Cue:
    start: float
    end: float
    speaker: str
    lines: list[str]


def _wrap(words: list[str], width: int, indent: int = 0) -> list[str]:
    """Words filled into lines of at most `width` characters, the first line `indent` shorter."""
    lines: list[str] = []
    for word in words:
        room = width - (indent if len(lines) == 1 else 0)
        if lines and len(lines[-1]) + 1 + len(word) <= room:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def cues(doc: dict[str, Any], limits: CueLimits = CueLimits(), label: bool = False) -> list[Cue]:
    """Subtitle cues from the utterances: each utterance's words are taken in order into a cue
    until one more would need a line beyond `max_lines` (lines wrapped at word boundaries to
    `max_line_chars`) or stretch the cue past `max_cue_s`; the cue spans its words' times. An
    utterance without word timings is wrapped the same way, its time shared by characters. A
    single word longer than a line stays whole on its own line. With `label`, the first line also
    holds the speaker label "[SPEAKER_00] " (SRT), which counts against its width."""
    out: list[Cue] = []
    for u in doc["utterances"]:
        timed = [(w["start"], w["end"], w["word"].strip()) for w in u.get("words") or [] if w["word"].strip()]
        if not timed:
            timed = _spread(u["start"], u["end"], u["text"].split())
        speaker = who(u)
        indent = len(f"[{speaker}] ") if label else 0
        current: list[tuple[float, float, str]] = []
        for word in timed:
            candidate = current + [word]
            fits = len(_wrap([w for _, _, w in candidate], limits.max_line_chars, indent)) <= limits.max_lines
            if current and (not fits or word[1] - current[0][0] > limits.max_cue_s):
                out.append(_cue(current, speaker, limits, indent))
                candidate = [word]
            current = candidate
        if current:
            out.append(_cue(current, speaker, limits, indent))
    return out


def _cue(words: list[tuple[float, float, str]], speaker: str, limits: CueLimits, indent: int) -> Cue:
    lines = _wrap([w for _, _, w in words], limits.max_line_chars, indent)
    return Cue(words[0][0], max(words[-1][1], words[0][0]), speaker, lines)


def _spread(start: float, end: float, words: list[str]) -> list[tuple[float, float, str]]:
    total = sum(len(w) for w in words) or 1
    out, t = [], start
    for w in words:
        length = (end - start) * len(w) / total
        out.append((t, t + length, w))
        t += length
    return out


def to_srt(doc: dict[str, Any], limits: CueLimits = CueLimits()) -> str:
    blocks = []
    for n, c in enumerate(cues(doc, limits, label=True), start=1):
        text = "\n".join(c.lines)
        blocks.append(f"{n}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n[{c.speaker}] {text}\n")
    return "\n".join(blocks)


def to_vtt(doc: dict[str, Any], limits: CueLimits = CueLimits()) -> str:
    lines = ["WEBVTT", ""]
    for c in cues(doc, limits):
        lines += [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}", f"<v {c.speaker}>{c.lines[0]}", *c.lines[1:], ""]
    return "\n".join(lines)


def to_txt(doc: dict[str, Any]) -> str:
    return "".join(f"[{_clock(u['start'], '.')[:-4]}] {who(u)}: {u['text']}\n" for u in doc["utterances"])


def to_rttm(doc: dict[str, Any]) -> str:
    """Speaker turns (who speaks when, on the VAD's speech frames; where two voices overlap both
    speakers have a turn), else the utterances."""
    name = doc.get("recording", "recording").replace(" ", "_") or "recording"
    return "".join(
        f"SPEAKER {name} 1 {t['start']:.3f} {t['end'] - t['start']:.3f} <NA> <NA> {t['speaker']} <NA> <NA>\n"
        for t in doc.get("turns") or doc["utterances"]
    )


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1)


RENDERERS = {"json": to_json, "srt": to_srt, "vtt": to_vtt, "txt": to_txt, "rttm": to_rttm}


def render(doc: dict[str, Any], fmt: str, limits: CueLimits | None = None) -> str:
    """One export format; `limits` shape the subtitle formats' cues (default: CueLimits())."""
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format {fmt!r}")
    if limits is not None and fmt in ("srt", "vtt"):
        return (to_srt if fmt == "srt" else to_vtt)(doc, limits)
    return RENDERERS[fmt](doc)
