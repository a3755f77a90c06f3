"""The bodies of the ``rrief_daily`` tasks, one function each, taking the Airflow context.

They resolve configuration (settings, warehouse URL, RIS connector, key), open and dispose an
engine, and call the step functions; the DAG file only wires them together. Everything they
return is small and JSON-safe (it goes to XCom).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from extractors.pipeline.batches import plan_batches
from extractors.pipeline.config import connector_from_settings, validation_policy
from extractors.pipeline.context import RunContext
from extractors.pipeline.dbt import run_dbt
from extractors.pipeline.extract import BatchSummary, extract_batch
from extractors.pipeline.fetch import fetch_window
from extractors.privacy import choose_key
from extractors.settings import get_settings
from extractors.warehouse.db import make_engine, resolve_url
from extractors.warehouse.load import upsert_run_metrics
from extractors.warehouse.rows import RunMetricsRow

log = logging.getLogger("rrief.pipeline")

Context = Mapping[str, Any]


def _interval(context: Context) -> tuple[Any, Any]:
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None or not start < end:
        raise ValueError(
            f"rrief_daily needs a non-empty data interval, got [{start}, {end}); schedule it with "
            "CronTriggerTimetable(..., interval=timedelta(days=1)) or pass a logical date"
        )
    return start, end


def _airflow_variable_key() -> str | None:
    """The Airflow variable ``rrief_pseudonym_key`` (None outside Airflow or when unset)."""
    try:
        from airflow.sdk import Variable

        return Variable.get("rrief_pseudonym_key", default=None)
    except Exception:
        return None


def prepare_warehouse(context: Context) -> str:
    """Migrate the warehouse to the newest revision and (re)apply roles and grants."""
    from extractors.warehouse.migrate import upgrade
    from extractors.warehouse.roles import ensure_roles

    engine = make_engine(get_settings().warehouse_url)
    try:
        revision = upgrade(engine)
        ensure_roles(engine)
    finally:
        engine.dispose()
    return str(revision)


def fetch(context: Context) -> dict[str, Any]:
    """Pull the interval's reports from the configured RIS into ``raw.reports``."""
    start, end = _interval(context)
    settings = get_settings()
    key = choose_key(settings.pseudonym_key, _airflow_variable_key)
    connector = connector_from_settings(settings)
    engine = make_engine(settings.warehouse_url)
    try:
        summary = fetch_window(
            connector,
            start,
            end,
            key,
            engine,
            RunContext.from_airflow(context),
        )
    finally:
        engine.dispose()
    return summary.model_dump()


def plan(context: Context) -> list[dict[str, Any]]:
    """Batch descriptors of the interval (key ranges per report type, never text)."""
    start, end = _interval(context)
    settings = get_settings()
    engine = make_engine(settings.warehouse_url)
    try:
        batches = plan_batches(engine, start, end, settings.batch_size, settings.schema_dirs())
    finally:
        engine.dispose()
    return [b.to_xcom() for b in batches]


def extract(descriptor: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """Extract, validate and load one batch."""
    settings = get_settings()
    engine = make_engine(settings.warehouse_url)
    try:
        summary = extract_batch(
            descriptor,
            settings,
            engine,
            RunContext.from_airflow(context),
            policy=validation_policy(settings),
        )
    finally:
        engine.dispose()
    return summary.model_dump()


def summarize(summaries: Sequence[Mapping[str, Any]], context: Context) -> dict[str, int]:
    """Totals over all batches, also written as the run's own ``ops.run_metrics`` row."""
    batches = [BatchSummary.model_validate(s) for s in summaries]
    totals = {
        "n_batches": len(batches),
        "n_in": sum(b.n_in for b in batches),
        "n_loaded": sum(b.n_loaded for b in batches),
        "n_quarantined": sum(b.n_quarantined for b in batches),
        "n_errored": sum(b.n_errored for b in batches),
    }
    run = RunContext.from_airflow(context)
    settings = get_settings()
    engine = make_engine(settings.warehouse_url)
    try:
        upsert_run_metrics(
            engine,
            [
                RunMetricsRow(
                    run_id=run.run_id,
                    dag_id=run.dag_id,
                    task_id=run.task_id,
                    map_index=run.map_index,
                    data_interval_start=run.data_interval_start,
                    data_interval_end=run.data_interval_end,
                    backend=settings.backend,
                    adapter_id=settings.adapter or None,
                    n_in=totals["n_in"],
                    n_loaded=totals["n_loaded"],
                    n_quarantined=totals["n_quarantined"],
                    n_errored=totals["n_errored"],
                    invalid_output_rate=(
                        (totals["n_quarantined"] + totals["n_errored"]) / totals["n_in"]
                        if totals["n_in"]
                        else 0.0
                    ),
                )
            ],
        )
    finally:
        engine.dispose()
    log.info("run totals: %s", totals)
    return totals


def dbt_build(context: Context) -> dict[str, Any]:
    """``dbt build`` (models and their tests) unless the run's params switch it off."""
    params = context.get("params") or {}
    if not params.get("run_dbt", True):
        log.info("dbt build skipped (params.run_dbt is false)")
        return {"skipped": True}
    settings = get_settings()
    result = run_dbt(("build",), url=resolve_url(settings.warehouse_url), settings=settings)
    return {"skipped": False, "returncode": result.returncode}


def on_failure(context: Context) -> None:
    """Failure callback of every task: one ``ops.task_failures`` row per failed attempt."""
    from extractors.pipeline.failures import record_failure

    record_failure(context, get_settings().warehouse_url)
