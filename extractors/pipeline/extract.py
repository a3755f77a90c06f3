"""Step 3: extract one batch, validate it, load it — in ONE transaction.

Every report read ends up in exactly one place: ``raw.extractions`` with status ok (passed
validation), ``raw.extractions`` with status error (the extractor failed), or
``raw.quarantine`` (failed a Great Expectations expectation, with the reasons). The counts and
latencies go to ``ops.run_metrics`` in the same transaction, so a killed task leaves nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, text

from extractors.extract import BackendError
from extractors.extract.base import Extractor
from extractors.extract.configured import configured_extractor
from extractors.lifecycle.registry import AdapterChoice, choose_adapter
from extractors.pipeline.batches import NOT_DONE_BY_VERSION, NOT_YET_EXTRACTED, BatchDescriptor
from extractors.pipeline.context import RunContext, percentile
from extractors.results import ExtractionResult, ReportInput
from extractors.schemas import get_schema
from extractors.settings import Settings
from extractors.validate import ValidationItem, ValidationPolicy, ValidationRun, validate_batch
from extractors.warehouse.load import (
    transaction,
    upsert_extractions,
    upsert_quarantine,
    upsert_run_metrics,
    upsert_validation_results,
)
from extractors.warehouse.rows import (
    ExtractionRow,
    FailedExpectation,
    QuarantineRow,
    RunMetricsRow,
    ValidationResultRow,
)

log = logging.getLogger("rrief.pipeline")

# Reports per extractor call: rules go one by one so latencies are per report; LLM backends
# batch for throughput (their latency is then the batch time divided by its size).
LATENCY_CHUNK = {"rules": 1}
DEFAULT_CHUNK = 16


class BatchSummary(BaseModel):
    """What one batch did (counts only: XCom-safe). n_in = loaded + quarantined + errored."""

    report_type: str
    backend: str
    extractor_version: str
    n_in: int
    n_loaded: int
    n_quarantined: int
    n_errored: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    seconds: dict[str, float] = {}  # wall time per stage: read, extract, validate, load


_READ_SQL = text(
    f"""
    SELECT report_key, report_text, content_sha256 FROM raw.reports r
    WHERE report_type = :report_type
      AND report_final_at >= :start AND report_final_at < :end
      AND report_key BETWEEN :first_key AND :last_key
      AND (NOT :late OR ({NOT_YET_EXTRACTED}))
      AND (NOT :skip_done OR ({NOT_DONE_BY_VERSION}))
    ORDER BY report_key
    """
)


def extractor_for(
    report_type: str, settings: Settings, choice: AdapterChoice | None = None
) -> Extractor:
    """The configured backend for a report type.

    LLM backends take ``choice`` (the registry's production adapter or the ``RRIEF_ADAPTER``
    override, :func:`extractors.lifecycle.registry.choose_adapter`), else the report type's own
    ``RRIEF_ADAPTER`` entry: an adapter trained for one schema must never extract another.
    """
    ref = choice.ref if choice is not None else settings.adapter_for(report_type)
    if settings.backend != "rules" and not ref:
        raise BackendError(
            f"no adapter configured for report type {report_type!r}: promote one "
            f"(`rrief adapters promote`) or set RRIEF_ADAPTER, "
            f"e.g. RRIEF_ADAPTER={report_type}=<adapter>,... (now {settings.adapter!r})"
        )
    schema = get_schema(report_type, settings.schema_dirs())
    given = {"adapter": ref} if settings.backend != "rules" else {}
    return configured_extractor(settings, settings.backend, schema, **given)


def _choose(report_type: str, settings: Settings, engine: Engine) -> AdapterChoice | None:
    if settings.backend == "rules":
        return None
    return choose_adapter(engine, report_type, settings.backend, settings.adapter_for(report_type))


def _extract_timed(
    extractor: Extractor, reports: list[ReportInput]
) -> tuple[list[ExtractionResult], list[float]]:
    chunk = LATENCY_CHUNK.get(extractor.backend, DEFAULT_CHUNK)
    results: list[ExtractionResult] = []
    latencies: list[float] = []
    for i in range(0, len(reports), chunk):
        part = reports[i : i + chunk]
        t0 = time.perf_counter()
        results.extend(extractor.extract_batch(part))
        per_report_ms = (time.perf_counter() - t0) * 1000.0 / len(part)
        latencies.extend([per_report_ms] * len(part))
    return results, latencies


def extract_batch(
    descriptor: BatchDescriptor | Mapping[str, Any],
    settings: Settings,
    engine: Engine,
    context: RunContext,
    *,
    policy: ValidationPolicy | None = None,
    extractor: Extractor | None = None,
    results_dir: Path | None = None,
    given_adapter_id: str | None = None,
    skip_done: bool = False,
) -> BatchSummary:
    """Extract, validate and load the reports of one descriptor; returns the counts.

    With ``results_dir`` (``RRIEF_GX_DIR``) each suite's Great Expectations result is kept
    there and indexed in ``ops.validation_results`` in the batch's transaction. Metrics carry
    the run's data interval (a late batch's reports are work of this run, counted once).

    Without ``extractor``, LLM backends extract with the registry's production adapter of the
    report type, or the ``RRIEF_ADAPTER`` override; its id goes into every row. A caller that
    passes its own ``extractor`` names its adapter with ``given_adapter_id``. ``skip_done``
    leaves out reports this extractor version already handled in their current text (ok,
    error or quarantined): a re-extraction killed half-way continues where it stopped.
    """
    batch = (
        descriptor
        if isinstance(descriptor, BatchDescriptor)
        else BatchDescriptor.model_validate(descriptor)
    )
    choice = None
    if extractor is None:
        choice = _choose(batch.report_type, settings, engine)
        extractor = extractor_for(batch.report_type, settings, choice)
    schema = extractor.schema
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 4)
        clock = now

    with engine.connect() as conn:
        params = {**batch.model_dump(), "skip_done": skip_done, "version": extractor.version}
        rows = conn.execute(_READ_SQL, params).all()
    texts = {r.report_key: r.report_text for r in rows}
    hashes = {r.report_key: r.content_sha256 for r in rows}
    reports = [ReportInput(report_id=r.report_key, text=r.report_text) for r in rows]

    lap("read")
    results, latencies = _extract_timed(extractor, reports)
    lap("extract")
    ok = [r for r in results if r.status == "ok"]
    interval_start = context.data_interval_start or batch.start
    interval_end = context.data_interval_end or batch.end
    keep = (
        ValidationRun(
            root=results_dir, run_name=context.run_id, run_time=interval_start, batch=batch.label
        )
        if results_dir is not None
        else None
    )
    validation = validate_batch(
        schema,
        [
            ValidationItem(
                report_id=r.report_id or "",
                text=texts[r.report_id or ""],
                labels=r.labels or {},
                evidence={k: list(v) for k, v in r.evidence.items()},
            )
            for r in ok
        ],
        policy,
        keep,
    )
    failed = {v.report_id: v for v in validation.verdicts if not v.passed}
    lap("validate")

    if extractor.backend == "rules":
        adapter_id = None
    elif choice is not None:
        adapter_id = choice.adapter_id
    else:
        adapter_id = given_adapter_id or settings.adapter_for(extractor.schema.name) or None
    loaded: list[ExtractionRow] = []
    quarantined: list[QuarantineRow] = []
    for r in results:
        key = r.report_id or ""
        row = ExtractionRow.from_result(
            r, content_sha256=hashes[key], run_id=context.run_id, adapter_id=adapter_id
        )
        verdict = failed.get(key)
        if verdict is None:
            loaded.append(row)
            continue
        quarantined.append(
            QuarantineRow(
                report_key=key,
                schema_name=row.schema_name,
                schema_version=row.schema_version,
                extractor_version=row.extractor_version,
                labels=row.labels,
                evidence=row.evidence,
                failed_expectations=[
                    FailedExpectation(expectation=f.expectation, column=f.path, reason=f.reason)
                    for f in verdict.failures
                ],
                run_id=context.run_id,
            )
        )
    n_errored = sum(1 for r in results if r.status == "error")
    n_loaded = len(loaded) - n_errored
    summary = BatchSummary(
        report_type=batch.report_type,
        backend=extractor.backend,
        extractor_version=extractor.version,
        n_in=len(reports),
        n_loaded=n_loaded,
        n_quarantined=len(quarantined),
        n_errored=n_errored,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        seconds=seconds,
    )
    if summary.n_in != summary.n_loaded + summary.n_quarantined + summary.n_errored:
        raise AssertionError(f"batch accounting is off: {summary}")  # a bug, never bad data

    with transaction(engine) as conn:
        if loaded:
            upsert_extractions(conn, loaded)
        if quarantined:
            upsert_quarantine(conn, quarantined)
        upsert_run_metrics(
            conn,
            [
                RunMetricsRow(
                    run_id=context.run_id,
                    dag_id=context.dag_id,
                    task_id=context.task_id,
                    map_index=context.map_index,
                    data_interval_start=interval_start,
                    data_interval_end=interval_end,
                    schema_name=schema.name,
                    backend=extractor.backend,
                    adapter_id=adapter_id,
                    n_in=summary.n_in,
                    n_loaded=summary.n_loaded,
                    n_quarantined=summary.n_quarantined,
                    n_errored=summary.n_errored,
                    invalid_output_rate=(
                        (summary.n_errored + summary.n_quarantined) / summary.n_in
                        if summary.n_in
                        else 0.0
                    ),
                    latency_p50_ms=summary.latency_p50_ms,
                    latency_p95_ms=summary.latency_p95_ms,
                )
            ],
        )
        if validation.stored:
            upsert_validation_results(
                conn,
                [
                    ValidationResultRow(
                        run_id=context.run_id,
                        dag_id=context.dag_id,
                        task_id=context.task_id,
                        map_index=context.map_index,
                        data_interval_start=interval_start,
                        schema_name=schema.name,
                        batch=batch.label,
                        **stored.model_dump(),
                    )
                    for stored in validation.stored
                ],
            )
    lap("load")
    summary.seconds.update(seconds)
    log.info(
        "batch %s: %d in, %d loaded, %d quarantined, %d errored",
        batch.label,
        summary.n_in,
        summary.n_loaded,
        summary.n_quarantined,
        summary.n_errored,
    )
    return summary
