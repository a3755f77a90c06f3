"""HTML/XHTML report renditions and FHIR narratives → plain text that keeps its paragraphs.

Block elements (``p``, ``div``, headings, list items, table rows ...) end a paragraph, ``br``
ends a line, whitespace inside a paragraph collapses as a browser would, ``script``/``style``
are skipped and entities are decoded. Built on the standard library's ``HTMLParser``, which
never raises on malformed markup.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tr",
        "ul",
    }
)
_CELLS = frozenset({"td", "th"})
_SKIPPED = frozenset({"script", "style", "head", "title"})
_SPACES = re.compile(r"[ \t\f\v\r\n]+")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[list[str]] = [[]]  # paragraphs of lines of text runs
        self.lines: list[str] = []
        self.skip = 0
        self.pre = 0

    def _end_line(self) -> None:
        self.lines.append("")

    def _end_paragraph(self) -> None:
        if any(part.strip() for part in self.lines):
            self.paragraphs.append(self.lines)
        self.lines = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag in _SKIPPED:
            self.skip += 1
        elif tag == "br":
            self._end_line()
        elif tag in _BLOCKS:
            self._end_paragraph()
            if tag == "pre":
                self.pre += 1
        elif tag in _CELLS and self.lines and self.lines[-1].strip():
            self.lines[-1] += " "

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "br":
            self._end_line()
        elif tag.lower() in _BLOCKS:
            self._end_paragraph()

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _SKIPPED:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            if tag == "pre" and self.pre:
                self.pre -= 1
            self._end_paragraph()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            pieces = data.split("\n")
            if not self.lines:
                self.lines.append("")
            self.lines[-1] += pieces[0]
            self.lines.extend(pieces[1:])
            return
        text = _SPACES.sub(" ", data)
        if not self.lines:
            self.lines.append("")
        if not self.lines[-1] or self.lines[-1].endswith(" "):
            text = text.lstrip(" ")
        self.lines[-1] += text


def html_to_text(markup: str) -> str:
    """Plain text of an HTML/XHTML fragment or document: paragraphs separated by a blank line,
    ``<br>`` line breaks kept."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    parser._end_paragraph()
    paragraphs = []
    for lines in parser.paragraphs:
        cleaned = [line.strip() for line in lines]
        while cleaned and not cleaned[0]:
            cleaned.pop(0)
        while cleaned and not cleaned[-1]:
            cleaned.pop()
        if cleaned:
            paragraphs.append("\n".join(cleaned))
    return "\n\n".join(paragraphs)
