"""The one interface every backend implements: reports in, one result per report out.

The base class owns the guarantees the CLI, the DAG and the benchmarks rely on: input order is
kept, one result per input, and any problem with one report becomes an ``error`` result for
that report alone (never a dropped row, never a crash of the batch).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence

from extractors.results import Evidence, ExtractionResult, ExtractorInfo, ReportInput
from extractors.schemas import LabelValidationError, SchemaSpec
from extractors.settings import DEFAULT_MAX_REPORT_CHARS

log = logging.getLogger("rrief.extract")

Labels = dict[str, object]
EvidenceMap = dict[str, list[Evidence]]
# What extract_many yields per report: labels and evidence, optionally with the ExtractorInfo
# of the part that decided (a cascade: rules or LLM); an exception for a failed report.
Outcome = tuple[Labels, EvidenceMap] | tuple[Labels, EvidenceMap, ExtractorInfo] | Exception


class ExtractionError(Exception):
    """A report could not be extracted; the message goes into the result's ``error`` field."""

    def __init__(self, message: str, raw_output: str | None = None) -> None:
        super().__init__(message)
        self.raw_output = raw_output


class Extractor(ABC):
    """Base class of all backends (rules, hf, openai)."""

    backend: str = "base"
    #: longer reports become error results (``RRIEF_MAX_REPORT_CHARS``, set by make_extractor)
    max_report_chars: int = DEFAULT_MAX_REPORT_CHARS

    def __init__(self, schema: SchemaSpec) -> None:
        self.schema = schema

    @property
    @abstractmethod
    def version(self) -> str:
        """Version string recorded with every result (rules version, adapter id, ...)."""

    @property
    def info(self) -> ExtractorInfo:
        return ExtractorInfo(backend=self.backend, version=self.version)

    # -- what subclasses implement -----------------------------------------------------------
    def extract_labels(self, report: ReportInput) -> tuple[Labels, EvidenceMap]:
        """Labels and evidence for one report. Raise :class:`ExtractionError` on failure."""
        raise NotImplementedError

    def extract_many(self, reports: Sequence[ReportInput]) -> list[Outcome]:
        """Labels for several reports; batched backends override this. Exceptions per item."""
        out: list[Outcome] = []
        for r in reports:
            try:
                out.append(self.extract_labels(r))
            except Exception as exc:  # one bad report must not stop the batch
                out.append(exc)
        return out

    # -- what callers use ---------------------------------------------------------------------
    def extract_batch(self, reports: Sequence[ReportInput]) -> list[ExtractionResult]:
        """One result per report, in input order; failures become ``error`` results."""
        results: list[ExtractionResult | None] = [None] * len(reports)
        todo: list[int] = []
        for i, r in enumerate(reports):
            problem = self._precheck(r)
            if problem:
                results[i] = self.error_result(r.report_id, problem, flags=r.flags)
            else:
                todo.append(i)
        outcomes = self.extract_many([reports[i] for i in todo]) if todo else []
        for i, outcome in zip(todo, outcomes, strict=True):
            r = reports[i]
            if isinstance(outcome, Exception):
                results[i] = self._error_from_exception(r, outcome)
                continue
            labels, evidence, *decided = outcome
            try:
                canonical = self.schema.validate_labels(labels)
            except LabelValidationError as exc:
                results[i] = self.error_result(r.report_id, str(exc), flags=r.flags)
                continue
            results[i] = ExtractionResult(
                report_id=r.report_id,
                schema_name=self.schema.name,
                schema_version=self.schema.version,
                extractor=decided[0] if decided else self.info,
                status="ok",
                labels=canonical,
                evidence=evidence,
                flags=r.flags,
            )
        return [r for r in results if r is not None]

    def error_result(
        self,
        report_id: str | None,
        message: str,
        flags: list[str] | None = None,
        raw_output: str | None = None,
    ) -> ExtractionResult:
        return ExtractionResult(
            report_id=report_id,
            schema_name=self.schema.name,
            schema_version=self.schema.version,
            extractor=self.info,
            status="error",
            labels=None,
            error=message,
            flags=flags or [],
            raw_output=raw_output,
        )

    def _precheck(self, r: ReportInput) -> str | None:
        if not r.text.strip():
            return "empty report text"
        limit = self.max_report_chars
        if len(r.text) > limit:
            return f"report text has {len(r.text)} characters, over the limit of {limit} (RRIEF_MAX_REPORT_CHARS)"
        return None

    def _error_from_exception(self, r: ReportInput, exc: Exception) -> ExtractionResult:
        if isinstance(exc, ExtractionError):
            return self.error_result(r.report_id, str(exc), r.flags, exc.raw_output)
        # Never log report text: the report id and the exception type are enough to debug.
        log.warning("extraction of report %s failed: %s", r.report_id, type(exc).__name__)
        return self.error_result(r.report_id, f"{type(exc).__name__}: {exc}", r.flags)
