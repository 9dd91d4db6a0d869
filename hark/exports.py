"""Transcript exports rendered from one JSON document: json, srt, vtt, txt, rttm.

The reduce task builds the document once and writes every format to `out/<job>/`; the API serves
those objects, so a finished job's exports never change under a reader.
"""

from __future__ import annotations

import json
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


def to_srt(doc: dict[str, Any]) -> str:
    blocks = []
    for n, u in enumerate(doc["utterances"], start=1):
        blocks.append(f"{n}\n{_clock(u['start'], ',')} --> {_clock(u['end'], ',')}\n[{who(u)}] {u['text']}\n")
    return "\n".join(blocks)


def to_vtt(doc: dict[str, Any]) -> str:
    lines = ["WEBVTT", ""]
    for u in doc["utterances"]:
        lines += [f"{_clock(u['start'], '.')} --> {_clock(u['end'], '.')}", f"<v {who(u)}>{u['text']}", ""]
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


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format {fmt!r}")
    return RENDERERS[fmt](doc)
