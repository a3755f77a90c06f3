"""Step 2: split a window's reports into small batch descriptors, one list per report type.

A descriptor names a key range, never report text: it is what Airflow stores in XCom and maps
extraction tasks over. Key ranges (rather than offsets) stay correct if rows arrive between
planning and extraction.

With a look-back (``RRIEF_FETCH_LOOKBACK_DAYS``) the earlier days' reports are planned too, but
only those with no extraction (ok, error or quarantined) of their current text and report type
yet: late arrivals and amended reports. So each report is extracted once, however many runs
re-read its day, and a rerun of a day re-extracts that day as before.
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
    late: bool = Field(
        default=False,
        description="only reports of the window not yet extracted (look-back of earlier days)",
    )

    def to_xcom(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    @property
    def label(self) -> str:
        """Short name of the batch (mapped task names, Data Docs): type, key range, size."""
        late = " late" if self.late else ""
        return (
            f"{self.report_type}{late} {self.first_key[:8]}..{self.last_key[:8]} ({self.n_planned})"
        )


# A report of the window that has no extraction or quarantine row for its current text and type.
NOT_YET_EXTRACTED = """
    NOT EXISTS (
        SELECT 1 FROM raw.extractions e
        WHERE e.report_key = r.report_key AND e.schema_name = r.report_type
          AND e.content_sha256 = r.content_sha256
    )
    AND NOT EXISTS (
        SELECT 1 FROM raw.quarantine q
        WHERE q.report_key = r.report_key AND q.schema_name = r.report_type
          AND q.quarantined_at >= r.updated_at
    )
"""

# A report whose current text extractor version :version has not handled yet (no ok or error
# row, no quarantine since the text last changed): what a re-extraction still has to do.
NOT_DONE_BY_VERSION = """
    NOT EXISTS (
        SELECT 1 FROM raw.extractions e
        WHERE e.report_key = r.report_key AND e.schema_name = r.report_type
          AND e.content_sha256 = r.content_sha256 AND e.extractor_version = :version
    )
    AND NOT EXISTS (
        SELECT 1 FROM raw.quarantine q
        WHERE q.report_key = r.report_key AND q.schema_name = r.report_type
          AND q.extractor_version = :version AND q.quarantined_at >= r.updated_at
    )
"""

_PLAN_SQL = text(
    f"""
    WITH numbered AS (
        SELECT report_type, report_key,
               (row_number() OVER (PARTITION BY report_type ORDER BY report_key) - 1)
                   / :batch_size AS batch_no
        FROM raw.reports r
        WHERE report_final_at >= :start AND report_final_at < :end
          AND report_type IS NOT NULL
          AND (NOT :late OR ({NOT_YET_EXTRACTED}))
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
    lookback_start: datetime | None = None,
) -> list[BatchDescriptor]:
    """Batches of at most ``batch_size`` reports finalized in ``[start, end)``, per report type,
    then (with ``lookback_start`` before ``start``) the not yet extracted reports of
    ``[lookback_start, start)``.

    Reports whose type has no schema here are kept in ``raw.reports`` but not planned; they are
    counted in a warning so they are never dropped silently.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    known = {spec.name for spec in available_schemas(schema_search_path).values()}
    windows = [(start, end, False)]
    if lookback_start is not None and lookback_start < start:
        windows.append((lookback_start, start, True))
    batches: list[BatchDescriptor] = []
    skipped: dict[str, int] = {}
    with engine.connect() as conn:
        for lo, hi, late in windows:
            params = {"start": lo, "end": hi, "batch_size": batch_size, "late": late}
            for report_type, _, first_key, last_key, n in conn.execute(_PLAN_SQL, params).all():
                if report_type not in known:
                    skipped[report_type] = skipped.get(report_type, 0) + int(n)
                    continue
                batches.append(
                    BatchDescriptor(
                        report_type=report_type,
                        start=lo,
                        end=hi,
                        first_key=first_key,
                        last_key=last_key,
                        n_planned=int(n),
                        late=late,
                    )
                )
    if skipped:
        log.warning("reports with no schema to extract with (kept, not extracted): %s", skipped)
    n_late = sum(b.n_planned for b in batches if b.late)
    log.info(
        "planned %d batches for [%s, %s)%s",
        len(batches),
        start.isoformat(),
        end.isoformat(),
        f", {n_late} late or amended reports of the look-back" if n_late else "",
    )
    return batches
