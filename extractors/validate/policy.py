"""The tunable part of validation: how suspicious a finding's batch prevalence may get."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ValidationPolicy(BaseModel):
    """Batch-level prevalence sanity limits (the per-row checks are fixed by the schema).

    A finding that is positive in more than ``max_positive_rate`` of a batch of at least
    ``min_reports`` reports usually means a broken extractor or a changed report template
    (negation lost, a header phrase matched), so its positive rows are quarantined.
    """

    model_config = ConfigDict(frozen=True)

    max_positive_rate: float = Field(default=0.95, gt=0.0, le=1.0)
    min_reports: int = Field(default=50, ge=1)
    field_max_positive_rate: dict[str, float] = Field(
        default_factory=dict,
        description="per-field overrides of max_positive_rate, by field name",
    )

    def limit_for(self, field_name: str) -> float:
        return self.field_max_positive_rate.get(field_name, self.max_positive_rate)
