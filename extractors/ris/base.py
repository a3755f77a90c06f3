"""The interface every RIS connector implements: ``fetch(start, end)`` yields one
``ReportRecord`` per finalized report in the half-open window ``[start, end)``, or a
``RISRecordError`` for a record it could not read — the rest goes on.

``ReportRecord`` still carries the source identifiers; ``extractors.privacy`` turns it into a
pseudonymized warehouse row before anything is written. Neither model shows identifiers or text
in its ``repr``, and error records never quote them. Besides the report, a record says where its
pieces came from (``time_source``, ``id_source``, ``text_source``), how precise its times are
and what went wrong on the way (``flags``), so a feed can be checked without reading any text.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from extractors.ris.mapping import default_report_type, normalize_modality

ResultStatus = Literal["final", "corrected", "preliminary"]
Precision = Literal["year", "month", "day", "hour", "minute", "second"]


class RecordProblem(ValueError):
    """A field of a source record that cannot be used; the message names the field (segment,
    field number, JSON path) and at most a length, never the value."""


class ReportRecord(BaseModel):
    """One finalized report as the RIS delivered it (raw identifiers included)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1, description="connector/site name, part of the report key")
    patient_id: str = Field(min_length=1, repr=False)
    accession_number: str = Field(min_length=1, repr=False)
    modality: str = Field(min_length=1, description="DICOM modality code, e.g. CR, DX, MG, CT")
    procedure: str | None = None
    report_type: str | None = Field(
        default=None, description="schema to extract with; default from modality + procedure"
    )
    exam_at: AwareDatetime | None = None
    report_final_at: AwareDatetime
    text: str = Field(min_length=1, repr=False)
    locator: str | None = Field(default=None, description="file/row/resource it came from")
    result_status: ResultStatus = "final"
    time_source: str | None = Field(
        default=None, description="field report_final_at was read from, e.g. OBR-22, issued"
    )
    report_final_precision: Precision | None = Field(
        default=None, description="precision of report_final_at as sent (None: a full timestamp)"
    )
    exam_precision: Precision | None = Field(
        default=None, description="precision of exam_at as sent (a FHIR date may be 2012-12)"
    )
    id_source: str | None = Field(
        default=None, description="field the accession number came from, e.g. OBR-3, basedOn"
    )
    text_source: str | None = Field(default=None, description="where the text came from")
    flags: tuple[str, ...] = Field(
        default=(), description="problems met reading the record, e.g. invalid_bytes_replaced"
    )

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            for name in ("patient_id", "accession_number", "source"):
                if isinstance(data.get(name), str):
                    data[name] = data[name].strip()
            if isinstance(data.get("modality"), str):
                data["modality"] = normalize_modality(data["modality"])
            if isinstance(data.get("text"), str) and not data["text"].strip():
                data["text"] = ""  # whitespace-only text is missing text
        return data

    @model_validator(mode="after")
    def _fill_report_type(self) -> ReportRecord:
        # only when the caller did not decide (a connector passes None for "no schema applies")
        if self.report_type is None and "report_type" not in self.model_fields_set:
            guessed = default_report_type(self.modality, self.procedure)
            if guessed is not None:
                object.__setattr__(self, "report_type", guessed)
        return self

    def provenance(self) -> dict[str, Any]:
        """What ``raw.reports.provenance`` holds: field names, precisions and flags, never a
        value of the source record (so it may be logged and stored beside the pseudonyms)."""
        found: dict[str, Any] = {
            "time_source": self.time_source,
            "report_final_precision": self.report_final_precision,
            "exam_precision": self.exam_precision,
            "id_source": self.id_source,
            "text_source": self.text_source,
        }
        out = {k: v for k, v in found.items() if v is not None}
        if self.flags:
            out["flags"] = sorted(set(self.flags))
        return out


class RISRecordError(BaseModel):
    """A record the connector could not turn into a ``ReportRecord``: where, and why.

    Never contains report text, patient ids or accession numbers (only file names, row
    numbers, resource ids and field names).
    """

    model_config = ConfigDict(frozen=True)

    source: str
    locator: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source} {self.locator}: {self.reason}"


@runtime_checkable
class RISConnector(Protocol):
    """Anything that yields the finalized reports of a time window."""

    source: str

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Reports whose final/update time falls in ``[start, end)``, errors in place."""
        ...


def check_window(start: datetime, end: datetime) -> None:
    """Both ends timezone-aware and ``start < end``, or a precise ``ValueError``."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"window {name} {value.isoformat()} has no timezone")
    if not start < end:
        raise ValueError(f"empty window: start {start.isoformat()} >= end {end.isoformat()}")


def as_aware(value: datetime, naive_timezone: tzinfo = UTC) -> datetime:
    """Attach ``naive_timezone`` to a naive timestamp (many RIS databases store local time)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=naive_timezone)
    return value


def describe_validation_error(exc: ValidationError) -> str:
    """The fields and problems of a validation error, WITHOUT the offending input values."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def make_record(source: str, locator: str, **fields: object) -> ReportRecord | RISRecordError:
    """Build a ``ReportRecord``, or the ``RISRecordError`` saying which fields were bad."""
    try:
        return ReportRecord(source=source, locator=locator, **fields)
    except ValidationError as exc:
        return RISRecordError(source=source, locator=locator, reason=describe_validation_error(exc))
