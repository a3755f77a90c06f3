"""Re-extraction after a promotion: plan the reports whose labels came from another extractor
version, newest days first, and re-extract them batch by batch.

A batch names its schema's production adapter at planning time. When it runs it checks that
the adapter is still in production (a second promotion supersedes it: the batch does nothing
and the re-extraction of the newer promotion does the work) and leaves out the reports this
adapter already handled in their current text, so a killed run continues where it stopped and
a rerun does nothing twice. Each batch is one transaction (:func:`extract_batch`).
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Engine, text

from extractors.extract.base import Extractor
from extractors.lifecycle.registry import AdapterChoice, production_adapter
from extractors.pipeline.batches import NOT_DONE_BY_VERSION, BatchDescriptor

log = logging.getLogger("rrief.lifecycle")

# Reports of one schema in the window that adapter :version has not handled in their current
# text; one row per (day, batch), newest days first.
_PLAN_SQL = text(
    f"""
    WITH todo AS (
        SELECT r.report_key,
               date_trunc('day', r.report_final_at AT TIME ZONE 'UTC') AS day
        FROM raw.reports r
        WHERE r.report_type = :schema
          AND (CAST(:start AS timestamptz) IS NULL OR r.report_final_at >= :start)
          AND (CAST(:end AS timestamptz) IS NULL OR r.report_final_at < :end)
          AND {NOT_DONE_BY_VERSION}
    ),
    numbered AS (
        SELECT day, report_key,
               (row_number() OVER (PARTITION BY day ORDER BY report_key) - 1) / :batch_size
                   AS batch_no
        FROM todo
    )
    SELECT day, batch_no, min(report_key), max(report_key), count(*)
    FROM numbered GROUP BY day, batch_no ORDER BY day DESC, batch_no
    """
)

_PROGRESS_SQL = text(
    """
    SELECT a.schema_name, a.adapter_id, count(r.report_key) AS total,
           count(r.report_key) FILTER (WHERE EXISTS (
               SELECT 1 FROM raw.extractions e
               WHERE e.report_key = r.report_key AND e.schema_name = a.schema_name
                 AND e.content_sha256 = r.content_sha256 AND e.status = 'ok'
                 AND e.adapter_id = a.adapter_id
           )) AS on_current
    FROM ops.adapters a
    LEFT JOIN raw.reports r ON r.report_type = a.schema_name
    WHERE a.status = 'production'
    GROUP BY a.schema_name, a.adapter_id
    ORDER BY a.schema_name
    """
)


class ReextractBatch(BaseModel):
    """A batch of reports to re-extract with one production adapter (XCom-safe)."""

    batch: BatchDescriptor
    adapter_id: str

    def to_xcom(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Progress(BaseModel):
    """Per schema: reports whose current text has an ok extraction by the production adapter."""

    schema_name: str
    adapter_id: str
    on_current: int
    total: int


def plan_reextraction(
    engine: Engine,
    schema_name: str,
    batch_size: int,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
) -> list[ReextractBatch]:
    """Batches of ``schema_name``'s reports in ``[start, end)`` (None: unbounded) not yet
    handled by its production adapter, newest days first; none without a production adapter."""
    record = production_adapter(engine, schema_name)
    if record is None:
        log.warning("%s has no production adapter: nothing to re-extract", schema_name)
        return []
    params = {
        "schema": schema_name,
        "start": start,
        "end": end,
        "batch_size": batch_size,
        "version": record.adapter_id,
    }
    with engine.connect() as conn:
        rows = conn.execute(_PLAN_SQL, params).all()
    batches = []
    for day, _, first_key, last_key, n in rows:
        lo = day.replace(tzinfo=UTC)  # date_trunc of the UTC wall time: naive
        batches.append(
            ReextractBatch(
                batch=BatchDescriptor(
                    report_type=schema_name,
                    start=max(lo, start) if start else lo,
                    end=min(lo + timedelta(days=1), end) if end else lo + timedelta(days=1),
                    first_key=first_key,
                    last_key=last_key,
                    n_planned=int(n),
                ),
                adapter_id=record.adapter_id,
            )
        )
    log.info(
        "%s: %d reports in %d batches to re-extract with %s",
        schema_name,
        sum(b.batch.n_planned for b in batches),
        len(batches),
        record.adapter_id,
    )
    return batches


def current_choice(engine: Engine, planned: ReextractBatch, backend: str) -> AdapterChoice | None:
    """The planned adapter when it is still in production, else None (superseded)."""
    record = production_adapter(engine, planned.batch.report_type)
    if record is None or record.adapter_id != planned.adapter_id:
        now = record.adapter_id if record else "none"
        log.info(
            "batch %s: %s is no longer in production (now %s); left to the newer re-extraction",
            planned.batch.label,
            planned.adapter_id,
            now,
        )
        return None
    ref = record.path if backend == "hf" else record.served_name
    return AdapterChoice(ref=ref, adapter_id=record.adapter_id, source="registry")


def check_version(extractor: Extractor, planned: ReextractBatch) -> None:
    """The extractor must report the adapter's id as its version (hf and ``rrief serve`` do):
    resumption and the plan both key on it."""
    if extractor.version != planned.adapter_id:
        log.warning(
            "extractor version %s differs from adapter id %s: a rerun may repeat its batches",
            extractor.version,
            planned.adapter_id,
        )


def reextraction_progress(engine: Engine) -> list[Progress]:
    """Reports on the production adapter / all reports, per schema that has one."""
    with engine.connect() as conn:
        return [
            Progress(schema_name=r[0], adapter_id=r[1], total=int(r[2]), on_current=int(r[3]))
            for r in conn.execute(_PROGRESS_SQL)
        ]
