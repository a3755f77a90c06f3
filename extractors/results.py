"""The records that cross module boundaries: reports going in, extraction results coming out.

``ExtractionResult`` is the output contract of ``rrief extract`` (one JSON line per report);
other tools read it, so fields are only ever added, never renamed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Evidence(BaseModel):
    """The sentence a value came from, with character offsets into the normalized report text."""

    model_config = ConfigDict(frozen=True)

    text: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ReportInput(BaseModel):
    """One report to extract from. ``flags`` record decoding problems (e.g. replaced bytes)."""

    report_id: str
    text: str
    flags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


class ExtractorInfo(BaseModel):
    """Which backend (and adapter/rules version) produced a result.

    ``mode`` says how an LLM produced the labels: ``adapter`` (a LoRA adapter), ``zero-shot``
    (the base model with the full instruction) or ``few-shot`` (the same with solved examples).
    It is absent for the rules. A cascade result names the backend that decided.
    """

    backend: str
    version: str
    mode: str | None = None


class ExtractionResult(BaseModel):
    """One output line. ``status`` is ``ok`` with labels, or ``error`` with a message."""

    report_id: str | None
    schema_name: str = Field(serialization_alias="schema", validation_alias="schema")
    schema_version: int
    extractor: ExtractorInfo
    status: Literal["ok", "error"]
    labels: dict[str, Any] | None = None
    evidence: dict[str, list[Evidence]] = Field(default_factory=dict)
    error: str | None = None
    flags: list[str] = Field(default_factory=list)
    raw_output: str | None = Field(
        default=None, description="the model's raw text, kept on LLM error lines for debugging"
    )

    model_config = ConfigDict(populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(by_alias=True, mode="json")
        if data["raw_output"] is None:
            del data["raw_output"]
        if data["extractor"]["mode"] is None:
            del data["extractor"]["mode"]
        return data
