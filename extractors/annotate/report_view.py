"""The report as the page shows it: its sections, each cut into segments that carry their
character offsets and the label paths whose evidence covers them (for highlighting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from extractors.text.sections import find_sections

Spans = Mapping[str, Sequence[tuple[int, int]]]


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    text: str
    prefill_paths: tuple[str, ...] = ()
    marked_paths: tuple[str, ...] = ()

    blank: bool = False

    @property
    def highlighted(self) -> bool:
        return bool(self.prefill_paths or self.marked_paths)


@dataclass(frozen=True)
class SectionView:
    title: str
    header: str | None
    segments: list[Segment]


def _covering(spans: Spans, start: int, end: int) -> tuple[str, ...]:
    return tuple(
        sorted(p for p, ss in spans.items() if any(s <= start and end <= e for s, e in ss))
    )


def report_sections(text: str, prefill: Spans, marked: Spans) -> list[SectionView]:
    """Sections of ``text`` (offsets index ``text`` exactly, as evidence does)."""
    sections = find_sections(text) or []
    if not sections:
        return [SectionView("Report text", None, [Segment(0, len(text), text)])] if text else []
    cuts = {0, len(text)}
    for spans in (prefill, marked):
        for ss in spans.values():
            for s, e in ss:
                cuts.update((max(0, min(s, len(text))), max(0, min(e, len(text)))))
    views = []
    for sec in sections:
        inner = sorted(c for c in cuts | {sec.start, sec.end} if sec.start <= c <= sec.end)
        segments = [
            Segment(a, b, text[a:b], _covering(prefill, a, b), _covering(marked, a, b))
            for a, b in pairwise(inner)
            if b > a
        ]
        if sec.name == "preamble":
            title = "Report text" if len(sections) == 1 else "Before the first heading"
        else:
            title = sec.name.capitalize()
        header = (
            text[sec.header_start : sec.start].strip() if sec.header_start is not None else None
        )
        if header and header.rstrip(":").strip().lower() == sec.name:
            header = None  # "FINDINGS:" under the title Findings says nothing new
        views.append(SectionView(title, header, _lead_blank(segments)))
    return views


def _lead_blank(segments: list[Segment]) -> list[Segment]:
    """Split the line break after a header off the first segment (shown as nothing; its
    offsets stay, so a selection still maps to the right characters)."""
    if not segments or segments[0].highlighted:
        return segments
    first = segments[0]
    body = first.text.lstrip()
    cut = len(first.text) - len(body)
    if not cut:
        return segments
    blank = Segment(first.start, first.start + cut, first.text[:cut], blank=True)
    if not body:
        return [blank, *segments[1:]]
    return [blank, Segment(first.start + cut, first.end, body), *segments[1:]]
