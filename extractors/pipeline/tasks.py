"""The bodies of the ``rrief_daily`` tasks, one function each, taking the Airflow context.

They read the settings when the task runs (never when the DAG file is parsed), resolve the
configuration (warehouse URL, RIS connector, key), open and dispose an engine, and call the
step functions; the DAG file only wires them together. Everything they return is small and
JSON-safe (it goes to XCom).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from extractors.pipeline.batches import BatchDescriptor, plan_batches
from extractors.pipeline.config import connector_from_settings, validation_policy
from extractors.pipeline.connections import RIS_CONN_ID, WAREHOUSE_CONN_ID, sqlalchemy_url
from extractors.pipeline.context import RunContext
from extractors.pipeline.cosmos import DbtLayout
from extractors.pipeline.dbt import DbtError, run_dbt
from extractors.pipeline.extract import BatchSummary, extract_batch
from extractors.pipeline.fetch import fetch_window
from extractors.privacy import choose_key
from extractors.settings import Settings, get_dbt_settings, get_settings
from extractors.warehouse.db import make_engine, resolve_url
from extractors.warehouse.load import upsert_run_metrics
from extractors.warehouse.rows import RunMetricsRow

log = logging.getLogger("rrief.pipeline")

Context = Mapping[str, Any]

# Backends that need the GPU worker: ``plan_llm`` plans their batches for ``extract_llm``, which
# the DAG routes to the ``gpu`` queue and the ``llm`` pool; rules batches go through ``plan`` to
# ``extract``.
LLM_BACKENDS = ("hf", "openai")


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


def _connection_url(conn_id: str) -> str | None:
    """The SQLAlchemy URL of the Airflow Connection ``conn_id``, None when it is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return sqlalchemy_url(BaseHook.get_connection(conn_id))
    except AirflowNotFoundException:
        return None


def warehouse_url(settings: Settings) -> str:
    """The warehouse: the ``rrief_warehouse`` Connection (the one dbt uses), else
    ``RRIEF_WAREHOUSE_URL`` (empty: the embedded server)."""
    return _connection_url(WAREHOUSE_CONN_ID) or settings.warehouse_url


def _ris_settings(settings: Settings) -> Settings:
    """The settings with ``ris_url`` from the ``rrief_ris`` Connection when it is defined."""
    if settings.ris_kind != "sql":
        return settings
    url = _connection_url(RIS_CONN_ID)
    return settings.model_copy(update={"ris_url": url}) if url else settings


def check_warehouse(context: Context) -> str:
    """The warehouse's Alembic revision, or a clear failure when it is behind this code.

    Migrations and roles are a deployment step (``rrief warehouse upgrade``, run by
    airflow-init), not part of every daily run.
    """
    from extractors.warehouse.migrate import require_head

    engine = make_engine(warehouse_url(get_settings()))
    try:
        return require_head(engine)
    finally:
        engine.dispose()


def _lookback_start(start: Any, settings: Settings) -> Any:
    return start - timedelta(days=settings.fetch_lookback_days)


def fetch(context: Context) -> dict[str, Any]:
    """Pull the interval's reports from the configured RIS into ``raw.reports``, re-reading the
    ``RRIEF_FETCH_LOOKBACK_DAYS`` before it for late and amended reports."""
    start, end = _interval(context)
    settings = get_settings()
    key = choose_key(settings.pseudonym_key, _airflow_variable_key)
    connector = connector_from_settings(_ris_settings(settings))
    engine = make_engine(warehouse_url(settings))
    try:
        summary = fetch_window(
            connector,
            start,
            end,
            key,
            engine,
            RunContext.from_airflow(context),
            lookback_start=_lookback_start(start, settings),
        )
    finally:
        engine.dispose()
    return summary.model_dump()


def reconcile(context: Context) -> dict[str, Any]:
    """RIS vs warehouse counts for the last ``RRIEF_RECONCILE_DAYS`` days; a difference is an
    ``ops.alerts`` row and a failed task (so the failure notifier sends it)."""
    from extractors.health.check import store_reconciliation
    from extractors.pipeline.reconcile import reconcile as reconcile_counts

    start, _ = _interval(context)
    settings = get_settings()
    connector = connector_from_settings(_ris_settings(settings))
    run = RunContext.from_airflow(context)
    engine = make_engine(warehouse_url(settings))
    try:
        counts = reconcile_counts(connector, engine, start, settings.reconcile_days)
        store_reconciliation(engine, counts, run_id=run.run_id, dag_id=run.dag_id)
    finally:
        engine.dispose()
    return {"days": len(counts), "ris": sum(c.ris for c in counts)}


def plan(context: Context, *, llm: bool) -> list[dict[str, Any]]:
    """Batch descriptors (key ranges per report type, never text) of the interval and the
    look-back's not yet extracted reports, for one route: ``llm=False`` plans when
    ``RRIEF_BACKEND`` is rules (batches for ``extract``, default queue), ``llm=True`` when it is
    hf or openai (batches for ``extract_llm``, the GPU worker); the other route gets none."""
    settings = get_settings()
    if (settings.backend in LLM_BACKENDS) != llm:
        return []
    start, end = _interval(context)
    engine = make_engine(warehouse_url(settings))
    try:
        batches = plan_batches(
            engine,
            start,
            end,
            settings.batch_size,
            settings.schema_dirs(),
            lookback_start=_lookback_start(start, settings),
        )
    finally:
        engine.dispose()
    return [b.to_xcom() for b in batches]


def extract(descriptor: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """Extract, validate and load one batch; its label names the mapped task instance."""
    batch = BatchDescriptor.model_validate(descriptor)
    if isinstance(context, MutableMapping):
        context["batch_label"] = batch.label  # rendered by the task's map_index_template
    settings = get_settings()
    engine = make_engine(warehouse_url(settings))
    try:
        summary = extract_batch(
            batch,
            settings,
            engine,
            RunContext.from_airflow(context),
            policy=validation_policy(settings),
            results_dir=Path(settings.gx_dir) if settings.gx_dir else None,
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
    engine = make_engine(warehouse_url(settings))
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


def dbt_layout() -> DbtLayout:
    """Where dbt, its project and manifest are (``RRIEF_DBT_*``): read when the DAG file is
    parsed, because cosmos renders the dbt task group from them; paths and a mode only."""
    s = get_dbt_settings()
    return DbtLayout.resolve(
        s.dbt_project_dir, s.dbt_bin, s.dbt_manifest, s.dbt_execution_mode, s.dbt_lookback_days
    )


def dbt_enabled(context: Context) -> bool:
    """False when the run's params switch dbt off (the dbt tasks are then skipped)."""
    params = context.get("params") or {}
    enabled = bool(params.get("run_dbt", True))
    if not enabled:
        log.info("dbt skipped (params.run_dbt is false)")
    return enabled


def _dbt_target(settings: Settings, name: str) -> Path:
    """The target directory of one dbt step (kept between runs for dbt's partial parsing;
    ``max_active_runs=1`` keeps two runs from sharing it)."""
    return settings.target_dir() / name


def source_freshness(context: Context) -> dict[str, Any]:
    """``dbt source freshness`` over ``raw``: every stale table is an ``ops.alerts`` row
    (check ``freshness``, the run's window replaced); an ``error`` fails the task."""
    from extractors.health.alerts import PipelineHealthError
    from extractors.health.freshness import read_sources_json, store_freshness

    start, end = _interval(context)
    settings = get_settings()
    url = resolve_url(warehouse_url(settings))
    target = _dbt_target(settings, "freshness")
    result = run_dbt(
        ("source", "freshness"), url=url, settings=settings, target_path=target, check=False
    )
    sources = target / "sources.json"
    if not sources.exists():
        raise DbtError(
            f"dbt source freshness wrote no results (exit {result.returncode}):\n"
            f"{result.output_tail}"
        )
    results = read_sources_json(sources)
    run = RunContext.from_airflow(context)
    engine = make_engine(url)
    try:
        alerts = store_freshness(engine, results, start, end, run_id=run.run_id, dag_id=run.dag_id)
    finally:
        engine.dispose()
    for a in alerts:
        log.warning("freshness: %s", a.message)
    failed = [a for a in alerts if a.details.get("status") != "warn"]
    if failed:
        raise PipelineHealthError(failed)
    return {"sources": len(results), "stale": len(alerts)}


def dbt_docs(context: Context) -> dict[str, Any]:
    """``dbt docs generate --static``: one self-contained page of the models, their columns'
    meanings and the catalog, which the Airflow plugin serves read-only."""
    settings = get_settings()
    target = settings.docs_dir()
    run_dbt(
        ("docs", "generate", "--static"),
        url=resolve_url(warehouse_url(settings)),
        settings=settings,
        target_path=target,
    )
    return {"docs": str(target / "static_index.html")}


def on_failure(context: Context) -> None:
    """Failure callback of every task: one ``ops.task_failures`` row per failed attempt."""
    from extractors.pipeline.failures import record_failure

    record_failure(context, warehouse_url(get_settings()))


class AlertNotifier(BaseNotifier):
    """Failure callback of every task: mail (SMTP provider) and/or webhook, to the targets in
    ``RRIEF_ALERT_*`` read when the task fails (the DAG file declares it without settings)."""

    def notify(self, context: Any) -> None:
        from extractors.health.notify import NotifyTargets, notify_failure

        notify_failure(context, NotifyTargets.from_settings(get_settings()))
