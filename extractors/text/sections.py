"""Detect report sections (indication, comparison, findings, impression, other) by header.

Headers are matched case-insensitively at the start of a line or after a sentence end, so
all-caps, lower-case and run-together reports work. Text before the first header is ``preamble``.
Sections keep character offsets into the original text; nothing is cut or truncated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECTION_ALIASES: dict[str, tuple[str, ...]] = {
    "indication": (
        "indication",
        "indications",
        "clinical indication",
        "clinical history",
        "history",
        "clinical information",
        "reason for exam",
        "reason for examination",
        "clinical data",
    ),
    "comparison": ("comparison", "comparisons", "prior", "prior studies", "priors"),
    "technique": ("technique", "procedure", "examination", "exam", "protocol"),
    "findings": ("findings", "finding", "report", "description"),
    "impression": (
        "impression",
        "impressions",
        "conclusion",
        "conclusions",
        "opinion",
        "summary",
        "assessment",
        "diagnosis",
    ),
    # Headers that end the previous section without being one of the above, so e.g. a
    # "BREAST COMPOSITION:" line after "INDICATION:" is not read as part of the indication.
    "other": (
        "breast composition",
        "breast density",
        "composition",
        "recommendation",
        "recommendations",
        "addendum",
        "note",
        "notes",
        "calcium score",
        "coronary calcium",
    ),
}

_HEADER_TO_SECTION = {alias: name for name, aliases in SECTION_ALIASES.items() for alias in aliases}
_HEADER_RE = re.compile(
    r"(?:^|(?<=\n)|(?<=[.;]\s))[ \t]*(?P<header>"
    + "|".join(sorted((re.escape(a) for a in _HEADER_TO_SECTION), key=len, reverse=True))
    + r")[ \t]*:",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Section:
    """A named span of the report; ``start``/``end`` delimit the body after the header."""

    name: str
    start: int
    end: int
    header: str | None
    header_start: int | None = None

    def text(self, report: str) -> str:
        return report[self.start : self.end]


def find_sections(text: str) -> list[Section]:
    """Split ``text`` into sections; a report without headers is one ``preamble`` section."""
    matches = list(_HEADER_RE.finditer(text))
    sections: list[Section] = []
    first = matches[0].start("header") if matches else len(text)
    if text[:first].strip():
        sections.append(Section("preamble", 0, first, None))
    for i, m in enumerate(matches):
        end = matches[i + 1].start("header") if i + 1 < len(matches) else len(text)
        name = _HEADER_TO_SECTION[m.group("header").lower()]
        sections.append(Section(name, m.end(), end, m.group("header"), m.start("header")))
    return sections


def section_at(sections: list[Section], offset: int) -> str:
    """Name of the section holding character ``offset`` (``preamble`` if none)."""
    for s in sections:
        if s.start <= offset < s.end or (s.header is None and offset < s.end):
            return s.name
    for s in reversed(sections):
        if offset >= s.start:
            return s.name
    return "preamble"
