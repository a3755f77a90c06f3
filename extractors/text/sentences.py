"""Sentence splitting with exact character offsets, tolerant of radiology shorthand.

Splits on ``.``, ``?``, ``!``, ``;`` followed by space, and on line breaks; keeps decimals
("2.5 cm"), common abbreviations ("e.g.", "approx.") and ``XXXX`` masks inside sentences.
Each sentence's ``text`` equals ``report[start:end]``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
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


def _section_lookup(sections: list[Section]) -> Callable[[int], str]:
    """``section_at`` for ``sections`` in O(log n) per offset when they are ordered as
    :func:`find_sections` returns them (else the linear scan, which gives the same answers)."""
    starts = [s.start for s in sections]
    ordered = (
        all(s.start <= s.end for s in sections)
        and all(a.end <= b.start and a.start < b.start for a, b in pairwise(sections))
        # only a leading preamble (starting at 0) may lack a header
        and all(s.header is not None for s in sections[1:])
        and (not sections or sections[0].header is not None or sections[0].start == 0)
    )
    if not ordered:
        return lambda offset: section_at(sections, offset)
    names = [s.name for s in sections]

    def lookup(offset: int) -> str:
        # Sorted, disjoint spans: the last one starting at or before ``offset`` is the one
        # holding it, or else the one the linear scan falls back to; the preamble (the only
        # span without a header) comes first, so it wins exactly as in the scan.
        i = bisect_right(starts, offset) - 1
        return names[i] if i >= 0 else "preamble"

    return lookup


def split_sentences(text: str, sections: list[Section] | None = None) -> list[Sentence]:
    """Split the whole report into sentences, each trimmed of surrounding whitespace.

    Linear in the report length: header cuts and sections are looked up by bisection, so a
    report with thousands of sentences and headers costs no more per sentence than a short one.
    """
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
    headers = sorted((s.header_start, s.start) for s in sections if s.header_start is not None)
    header_starts = [h for h, _ in headers]
    disjoint = all(b1 <= h2 for (_, b1), (h2, _) in pairwise(headers))
    cuts = sorted({c for span in headers for c in span})
    section_of = _section_lookup(sections)

    def in_header(a: int, b: int) -> bool:
        if not disjoint:
            return any(h <= a and b <= body for h, body in headers)
        # disjoint header spans: only the last one starting at or before ``a`` can hold [a, b)
        i = bisect_right(header_starts, a) - 1
        return i >= 0 and b <= headers[i][1]

    out: list[Sentence] = []
    for s, e in spans:
        pieces = [s, *cuts[bisect_right(cuts, s) : bisect_left(cuts, e)], e]
        for a, b in pairwise(pieces):
            if headers and in_header(a, b):
                continue
            piece = text[a:b]
            body = piece.strip()  # str.strip() trims exactly the str.isspace() characters
            if body:
                a += len(piece) - len(piece.lstrip())
                out.append(Sentence(body, a, a + len(body), section_of(a)))
    return out
