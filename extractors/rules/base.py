"""Shared base for rule extractors: parse the report once, attach evidence spans."""

from __future__ import annotations

from abc import abstractmethod

from extractors.extract.base import EvidenceMap, Extractor, Labels
from extractors.results import Evidence, ReportInput
from extractors.schemas import SchemaSpec
from extractors.text.document import Document
from extractors.text.sentences import Sentence


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
        return self.extract_doc(Document.from_text(report.text))

    @abstractmethod
    def extract_doc(self, doc: Document) -> tuple[Labels, EvidenceMap]:
        """Labels (schema field -> value) and evidence (label path -> spans) for one report."""


def evidence_of(sentence: Sentence) -> Evidence:
    """Evidence pointing at a whole sentence."""
    return Evidence(text=sentence.text, start=sentence.start, end=sentence.end)
