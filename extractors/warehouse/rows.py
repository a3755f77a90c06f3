"""Pydantic rows the loaders accept, one model per warehouse table.

They are the boundary that keeps raw identifiers out: ``ReportRow`` has only ``*_key`` fields,
each a 64-hex-digit HMAC (``extractors.privacy``), so a patient id or accession number cannot
be handed to the loader in their place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from extractors.results import ExtractionResult

KEY_PATTERN = r"^[0-9a-f]{64}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReportRow(_Row):
    """One pseudonymized report, ready for ``raw.reports``."""

    report_key: str = Field(pattern=KEY_PATTERN)
    patient_key: str = Field(pattern=KEY_PATTERN)
    accession_key: str = Field(pattern=KEY_PATTERN)
    source: str = Field(min_length=1)
    modality: str = Field(min_length=1)
    report_type: str | None = None
    exam_at: AwareDatetime | None = None
    report_final_at: AwareDatetime
    report_text: str = Field(min_length=1, repr=False)
    content_sha256: str = Field(pattern=SHA256_PATTERN)
    result_status: Literal["final", "corrected", "preliminary"] = "final"
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="field names, precisions and flags; never values"
    )


class ExtractionRow(_Row):
    """One extraction result (ok or error) for ``raw.extractions``."""

    report_key: str = Field(pattern=KEY_PATTERN)
    schema_name: str
    schema_version: int
    backend: str
    extractor_version: str
    adapter_id: str | None = None
    status: Literal["ok", "error"]
    labels: dict[str, Any] | None = None
    evidence: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    error: str | None = None
    content_sha256: str = Field(pattern=SHA256_PATTERN)
    run_id: str = Field(min_length=1)

    @classmethod
    def from_result(
        cls,
        result: ExtractionResult,
        *,
        content_sha256: str,
        run_id: str,
        report_key: str | None = None,
        adapter_id: str | None = None,
    ) -> ExtractionRow:
        """Convert an ``ExtractionResult`` whose ``report_id`` is the report key (the default)."""
        key = report_key if report_key is not None else result.report_id
        return cls(
            report_key=key or "",
            schema_name=result.schema_name,
            schema_version=result.schema_version,
            backend=result.extractor.backend,
            extractor_version=result.extractor.version,
            adapter_id=adapter_id,
            status=result.status,
            labels=result.labels,
            evidence={
                name: [ev.model_dump(mode="json") for ev in items]
                for name, items in result.evidence.items()
            },
            error=result.error,
            content_sha256=content_sha256,
            run_id=run_id,
        )


class FailedExpectation(_Row):
    """Why a row was quarantined: which expectation, on which column/path, and the reason."""

    expectation: str
    column: str | None = None
    reason: str


class QuarantineRow(_Row):
    """An extraction that failed validation, for ``raw.quarantine``."""

    report_key: str = Field(pattern=KEY_PATTERN)
    schema_name: str
    schema_version: int
    extractor_version: str
    labels: dict[str, Any] | None = None
    evidence: dict[str, list[dict[str, Any]]] | None = None
    failed_expectations: list[FailedExpectation] = Field(min_length=1)
    run_id: str = Field(min_length=1)


class RunMetricsRow(_Row):
    """Counts and latencies of one task run, for ``ops.run_metrics`` (UPSERT on the PK)."""

    run_id: str
    dag_id: str | None = None
    task_id: str
    map_index: int = -1
    data_interval_start: AwareDatetime | None = None
    data_interval_end: AwareDatetime | None = None
    schema_name: str | None = None
    backend: str | None = None
    adapter_id: str | None = None
    n_in: int = Field(default=0, ge=0)
    n_loaded: int = Field(default=0, ge=0)
    n_quarantined: int = Field(default=0, ge=0)
    n_errored: int = Field(default=0, ge=0)
    invalid_output_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


class ValidationResultRow(_Row):
    """Where one batch's suite result was kept, for ``ops.validation_results`` (UPSERT on the
    PK: a retried task overwrites)."""

    run_id: str
    dag_id: str | None = None
    task_id: str
    map_index: int = -1
    data_interval_start: AwareDatetime | None = None
    schema_name: str
    suite_name: str
    table_name: str
    batch: str
    success: bool
    evaluated: int = Field(ge=0)
    unsuccessful: int = Field(ge=0)
    n_rows: int = Field(ge=0)
    result_path: str = Field(min_length=1)


class TaskFailureRow(_Row):
    """Why a task attempt failed, for ``ops.task_failures`` (append-only)."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    error: str
