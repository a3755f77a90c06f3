"""Step 2: split a window's reports into small batch descriptors, one list per report type.

A descriptor names a key range, never report text: it is what Airflow stores in XCom and maps
extraction tasks over. Key ranges (rather than offsets) stay correct if rows arrive between
planning and extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Engine, text

from extractors.schemas import available_schemas

log = logging.getLogger("rrief.pipeline")


class BatchDescriptor(BaseModel):
    """Which reports one extraction task handles: a report type, a window and a key range."""

    model_config = ConfigDict(frozen=True)

    report_type: str
    start: AwareDatetime
    end: AwareDatetime
    first_key: str = Field(description="smallest report_key of the batch (inclusive)")
    last_key: str = Field(description="largest report_key of the batch (inclusive)")
    n_planned: int = Field(ge=1)

    def to_xcom(self) -> dict[str, object]:
        return self.model_dump(mode="json")


_PLAN_SQL = text(
    """
    WITH numbered AS (
        SELECT report_type, report_key,
               (row_number() OVER (PARTITION BY report_type ORDER BY report_key) - 1)
                   / :batch_size AS batch_no
        FROM raw.reports
        WHERE report_final_at >= :start AND report_final_at < :end
          AND report_type IS NOT NULL
    )
    SELECT report_type, batch_no, min(report_key) AS first_key, max(report_key) AS last_key,
           count(*) AS n
    FROM numbered
    GROUP BY report_type, batch_no
    ORDER BY report_type, batch_no
    """
)


def plan_batches(
    engine: Engine,
    start: datetime,
    end: datetime,
    batch_size: int,
    schema_search_path: Sequence[Path] = (),
) -> list[BatchDescriptor]:
    """Batches of at most ``batch_size`` reports finalized in ``[start, end)``, per report type.

    Reports whose type has no schema here are kept in ``raw.reports`` but not planned; they are
    counted in a warning so they are never dropped silently.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    known = {spec.name for spec in available_schemas(schema_search_path).values()}
    with engine.connect() as conn:
        rows = conn.execute(_PLAN_SQL, {"start": start, "end": end, "batch_size": batch_size}).all()
    batches: list[BatchDescriptor] = []
    skipped: dict[str, int] = {}
    for report_type, _, first_key, last_key, n in rows:
        if report_type not in known:
            skipped[report_type] = skipped.get(report_type, 0) + int(n)
            continue
        batches.append(
            BatchDescriptor(
                report_type=report_type,
                start=start,
                end=end,
                first_key=first_key,
                last_key=last_key,
                n_planned=int(n),
            )
        )
    if skipped:
        log.warning("reports with no schema to extract with (kept, not extracted): %s", skipped)
    log.info("planned %d batches for [%s, %s)", len(batches), start.isoformat(), end.isoformat())
    return batches
