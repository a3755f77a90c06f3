"""A report prepared once for all rules: normalized text, sections and sentences."""

from __future__ import annotations

from dataclasses import dataclass

from extractors.text.sections import Section, find_sections
from extractors.text.sentences import Sentence, split_sentences


@dataclass(frozen=True)
class Document:
    """Normalized report text with its sections and sentences (offsets into ``text``)."""

    text: str
    sections: list[Section]
    sentences: list[Sentence]

    @classmethod
    def from_text(cls, text: str) -> Document:
        sections = find_sections(text)
        return cls(text=text, sections=sections, sentences=split_sentences(text, sections))
