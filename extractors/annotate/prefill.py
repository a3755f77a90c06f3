"""Pre-filled labels for a page: what the current extractor says about the report, with its
evidence spans, so the annotator corrects rather than types from scratch."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from pydantic import BaseModel

from extractors.extract.base import Extractor
from extractors.results import ReportInput
from extractors.schemas import SchemaSpec

log = logging.getLogger("rrief.annotate")
CACHE_SIZE = 512


class Prefill(BaseModel):
    """Labels to start from, where they came from and the spans they rest on."""

    labels: dict
    evidence: dict[str, list[tuple[int, int]]]
    source: str
    version: str
    note: str | None = None


class Prefiller:
    """Runs one schema's extractor on a report text (cached by content hash); without an
    extractor, or when it fails on a report, the schema's defaults with a note saying why."""

    def __init__(self, schema: SchemaSpec, extractor: Extractor | None, why_none: str = "") -> None:
        self.schema = schema
        self.extractor = extractor
        self.why_none = why_none or f"no extractor for {schema.id}"
        self._cache: OrderedDict[str, Prefill] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        return self.extractor.backend if self.extractor else "none"

    @property
    def version(self) -> str:
        return self.extractor.version if self.extractor else ""

    def _empty(self, note: str) -> Prefill:
        return Prefill(labels=self.schema.empty_labels(), evidence={}, source="none", version="", note=note)  # fmt: skip

    def __call__(self, report_key: str, text: str, content_sha256: str) -> Prefill:
        with self._lock:
            if content_sha256 in self._cache:
                self._cache.move_to_end(content_sha256)
                return self._cache[content_sha256]
        result = self._compute(report_key, text)
        with self._lock:
            self._cache[content_sha256] = result
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def _compute(self, report_key: str, text: str) -> Prefill:
        if self.extractor is None:
            return self._empty(f"{self.why_none}: every field starts at its default")
        (result,) = self.extractor.extract_batch([ReportInput(report_id=report_key, text=text)])
        if result.status != "ok" or result.labels is None:
            log.warning("pre-fill failed for report %s", report_key[:12])  # never the text
            return self._empty(f"{self.extractor.backend} could not pre-fill this report")
        evidence = {path: [(e.start, e.end) for e in spans] for path, spans in result.evidence.items()}  # fmt: skip
        return Prefill(
            labels=result.labels,
            evidence=evidence,
            source=result.extractor.backend,
            version=result.extractor.version,
        )
