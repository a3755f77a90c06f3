"""Sentence splitting with exact character offsets, tolerant of radiology shorthand.

Splits on ``.``, ``?``, ``!``, ``;`` followed by space, and on line breaks; keeps decimals
("2.5 cm"), common abbreviations ("e.g.", "approx.") and ``XXXX`` masks inside sentences.
Each sentence's ``text`` equals ``report[start:end]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from extractors.text.sections import Section, find_sections, section_at

_ABBREVIATIONS = {"e.g", "i.e", "approx", "vs", "dr", "mr", "mrs", "ms", "fig", "st", "incl"}
_BOUNDARY_RE = re.compile(r"[.!?;]+(?=\s)|\n+")


@dataclass(frozen=True)
class Sentence:
    """One sentence: its text, offsets into the report and the section it lies in."""

    text: str
    start: int
    end: int
    section: str


def _is_abbreviation(text: str, dot_pos: int) -> bool:
    if text[dot_pos] != ".":
        return False
    word_start = dot_pos
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot_pos].lower().lstrip("(")
    return word in _ABBREVIATIONS


def split_sentences(text: str, sections: list[Section] | None = None) -> list[Sentence]:
    """Split the whole report into sentences, each trimmed of surrounding whitespace."""
    if sections is None:
        sections = find_sections(text)
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(text):
        if m.group().startswith(".") and _is_abbreviation(text, m.start()):
            continue
        end = m.end() if not m.group().startswith("\n") else m.start()
        spans.append((start, end))
        start = m.end()
    spans.append((start, len(text)))
    # Section headers start a new sentence ("... normal. IMPRESSION: No acute ...") and are
    # not sentences themselves.
    headers = [(s.header_start, s.start) for s in sections if s.header_start is not None]
    cuts = sorted({c for span in headers for c in span})
    out: list[Sentence] = []
    for s, e in spans:
        pieces = [s, *[c for c in cuts if s < c < e], e]
        for a, b in pairwise(pieces):
            if any(h <= a and b <= body for h, body in headers):
                continue
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if a < b:
                out.append(Sentence(text[a:b], a, b, section_at(sections, a)))
    return out
