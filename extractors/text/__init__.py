"""Report text handling: decoding, section detection and sentence splitting with offsets."""

from extractors.text.decode import DecodedText, decode_report
from extractors.text.document import Document
from extractors.text.sections import Section, find_sections
from extractors.text.sentences import Sentence, split_sentences

__all__ = [
    "DecodedText",
    "Document",
    "Section",
    "Sentence",
    "decode_report",
    "find_sections",
    "split_sentences",
]
