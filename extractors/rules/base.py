"""Shared base for rule extractors: parse the report once, attach evidence spans.

Every rule reads one sentence at a time, and its cues reach a few words (14 at most), so a
sentence is cut into pieces of at most :data:`MAX_SENTENCE_CHARS` characters before any rule
sees it. Real sentences are far shorter (the longest in the development data has ~240), so
this changes nothing for them; it bounds the work per sentence for text without full stops
(a 2 MB run-on "sentence" costs what 2,000 ordinary ones do), which keeps every rule linear in
the report length. Cuts fall on clause boundaries where the text has them (``_CUT_RE``); only
the words right at a cut of such a run-on text can read differently than uncut.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Iterator

from extractors.extract.base import EvidenceMap, Extractor, Labels
from extractors.results import Evidence, ReportInput
from extractors.schemas import SchemaSpec
from extractors.text.document import Document
from extractors.text.sentences import Sentence

#: The longest piece of a sentence a rule reads at once (see the module docstring).
MAX_SENTENCE_CHARS = 1_000

# Where a long sentence is cut, best first: after a semicolon or colon; before a clause
# connective (negation and uncertainty scope stops there anyway); before "no" / "without" (the
# cue then opens the next piece, so what follows stays denied); after a comma; at a space.
_CUT_RE = re.compile(
    r"(?P<clause>[;:])(?=\s)"
    r"|\s(?P<connective>)(?=(?:but|however|although|whereas|which|there\s+(?:is|are))\b)"
    r"|\s(?P<negation>)(?=(?:no|without)\b)"
    r"|(?P<comma>,)(?=\s)"
    r"|(?P<space>\s)",
    re.IGNORECASE,
)
_CUT_PRIORITY = ("clause", "connective", "negation", "comma", "space")
_LAST_SPACE_RE = re.compile(r".*\s", re.DOTALL)


def _cut(text: str, pos: int, max_chars: int) -> int:
    """Where the piece starting at ``pos`` ends: the best cut point in the second half of
    the window (so pieces stay at least half the limit long), else the last space, else the
    limit itself (a word longer than the limit)."""
    best: dict[str, int] = {}
    for m in _CUT_RE.finditer(text, pos + max_chars // 2, pos + max_chars + 1):
        kind = m.lastgroup or "space"
        best[kind] = m.end() if kind in ("clause", "comma") else m.start()
    for kind in _CUT_PRIORITY:
        if kind in best and pos < best[kind] <= pos + max_chars:
            return best[kind]
    # no space in the second half: the last one of the first half keeps a word whole
    last = _LAST_SPACE_RE.match(text, pos + 1, pos + max_chars // 2 + 1)
    return last.end() - 1 if last is not None else pos + max_chars


def bounded_sentences(
    sentences: list[Sentence], max_chars: int = MAX_SENTENCE_CHARS
) -> Iterator[Sentence]:
    """``sentences`` with each one longer than ``max_chars`` cut into pieces of at most
    ``max_chars`` (at a clause boundary where the text has one, see ``_CUT_RE``); pieces keep
    the sentence's section and exact offsets into the report."""
    for sentence in sentences:
        text = sentence.text
        if len(text) <= max_chars:
            yield sentence
            continue
        pos = 0
        while pos < len(text):
            stop = len(text) if len(text) - pos <= max_chars else _cut(text, pos, max_chars)
            piece = text[pos:stop]
            body = piece.strip()
            if body:
                start = sentence.start + pos + (len(piece) - len(piece.lstrip()))
                yield Sentence(body, start, start + len(body), sentence.section)
            pos = stop
            while pos < len(text) and text[pos].isspace():
                pos += 1


class RuleExtractor(Extractor):
    """A deterministic extractor for one schema name; subclasses implement :meth:`extract_doc`."""

    backend = "rules"
    schema_name: str = ""
    rules_version: str = "1"

    def __init__(self, schema: SchemaSpec) -> None:
        if schema.name != self.schema_name:
            raise ValueError(f"{type(self).__name__} serves {self.schema_name}, not {schema.id}")
        super().__init__(schema)

    @property
    def version(self) -> str:
        return f"{self.schema_name}-rules-{self.rules_version}"

    def extract_labels(self, report: ReportInput) -> tuple[Labels, EvidenceMap]:
        doc = Document.from_text(report.text)
        sentences = list(bounded_sentences(doc.sentences))
        if len(sentences) != len(doc.sentences):
            doc = Document(text=doc.text, sections=doc.sections, sentences=sentences)
        return self.extract_doc(doc)

    @abstractmethod
    def extract_doc(self, doc: Document) -> tuple[Labels, EvidenceMap]:
        """Labels (schema field -> value) and evidence (label path -> spans) for one report."""


def evidence_of(sentence: Sentence) -> Evidence:
    """Evidence pointing at a whole sentence."""
    return Evidence(text=sentence.text, start=sentence.start, end=sentence.end)
