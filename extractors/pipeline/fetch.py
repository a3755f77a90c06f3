"""Step 1: pull a window's reports from the RIS, pseudonymize them, UPSERT ``raw.reports``.

Raw identifiers stop in :func:`extractors.privacy.pseudonymize_record`; the whole window is
loaded in one transaction, so a killed run leaves nothing half-written and a rerun of the same
window finds every row unchanged.

A look-back (``lookback_start``, ``RRIEF_FETCH_LOOKBACK_DAYS`` before the interval) re-reads the
earlier days in the same transaction: reports that reached the RIS after their day was run are
inserted (``late``), amended ones updated; the rest is unchanged, so re-reading costs no rows.
Only the run's own interval is counted in ``ops.run_metrics`` (a re-read day is never counted
twice); the look-back's counts are in the summary and the log.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import Engine

from extractors.pipeline.context import RunContext
from extractors.privacy import Pseudonymizer, pseudonymize_record
from extractors.ris.base import ReportRecord, RISConnector, RISRecordError
from extractors.text.decode import decode_report
from extractors.warehouse.load import transaction, upsert_reports, upsert_run_metrics
from extractors.warehouse.rows import ReportRow, RunMetricsRow

log = logging.getLogger("rrief.pipeline")

MAX_LISTED_ERRORS = 20


class FetchSummary(BaseModel):
    """What one window's fetch did (counts only: safe for XCom and logs)."""

    n_fetched: int = 0
    n_record_errors: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    by_report_type: dict[str, int] = Field(default_factory=dict)
    record_errors: list[str] = Field(
        default_factory=list, description=f"the first {MAX_LISTED_ERRORS} RIS record errors"
    )
    lookback_reread: int = Field(default=0, description="reports of the look-back days re-read")
    late: int = Field(default=0, description="look-back reports new to the warehouse")
    amended: int = Field(default=0, description="look-back reports whose text or type changed")
    lookback_record_errors: int = 0


def _rows(
    records: Iterator[ReportRecord | RISRecordError],
    pseudonymizer: Pseudonymizer,
    summary: FetchSummary,
    types: Counter[str],
) -> Iterator[ReportRow]:
    for item in records:
        if isinstance(item, RISRecordError):
            summary.n_record_errors += 1
            if len(summary.record_errors) < MAX_LISTED_ERRORS:
                summary.record_errors.append(str(item))
            log.warning("RIS record skipped: %s", item)
            continue
        # the warehouse stores normalized text: evidence offsets refer to exactly this text
        record = item.model_copy(update={"text": decode_report(item.text).text})
        summary.n_fetched += 1
        types[record.report_type or "none"] += 1
        yield pseudonymize_record(record, pseudonymizer)


def fetch_window(
    connector: RISConnector,
    start: datetime,
    end: datetime,
    key: str | bytes,
    engine: Engine,
    context: RunContext | None = None,
    lookback_start: datetime | None = None,
) -> FetchSummary:
    """Load the reports finalized in ``[start, end)`` into ``raw.reports`` (idempotent), and
    re-read ``[lookback_start, start)`` for late and amended reports.

    ``key`` is the HMAC pseudonymization key (:func:`~extractors.privacy.choose_key`). Records the
    connector could not read are counted and listed, never silently dropped; with ``context``
    the interval's counts also go to ``ops.run_metrics`` in the same transaction.
    """
    pseudonymizer = Pseudonymizer(key)
    summary = FetchSummary()
    types: Counter[str] = Counter()
    with transaction(engine) as conn:
        if lookback_start is not None and lookback_start < start:
            earlier = FetchSummary()
            counts = upsert_reports(
                conn,
                _rows(connector.fetch(lookback_start, start), pseudonymizer, earlier, Counter()),
            )
            summary.lookback_reread = earlier.n_fetched
            summary.late, summary.amended = counts.inserted, counts.updated
            summary.lookback_record_errors = earlier.n_record_errors
        counts = upsert_reports(
            conn, _rows(connector.fetch(start, end), pseudonymizer, summary, types)
        )
        summary.inserted, summary.updated, summary.unchanged = (
            counts.inserted,
            counts.updated,
            counts.unchanged,
        )
        summary.by_report_type = dict(sorted(types.items()))
        if context is not None:
            n_in = summary.n_fetched + summary.n_record_errors
            upsert_run_metrics(
                conn,
                [
                    RunMetricsRow(
                        run_id=context.run_id,
                        dag_id=context.dag_id,
                        task_id=context.task_id,
                        map_index=context.map_index,
                        data_interval_start=start,
                        data_interval_end=end,
                        n_in=n_in,
                        n_loaded=summary.n_fetched,
                        n_errored=summary.n_record_errors,
                        invalid_output_rate=summary.n_record_errors / n_in if n_in else 0.0,
                    )
                ],
            )
    log.info(
        "fetched %d reports (%d new, %d changed, %d unchanged), %d RIS record errors",
        summary.n_fetched,
        summary.inserted,
        summary.updated,
        summary.unchanged,
        summary.n_record_errors,
    )
    if lookback_start is not None and lookback_start < start:
        log.info(
            "look-back from %s: %d reports re-read, %d late, %d amended, %d RIS record errors",
            lookback_start.isoformat(),
            summary.lookback_reread,
            summary.late,
            summary.amended,
            summary.lookback_record_errors,
        )
    return summary
