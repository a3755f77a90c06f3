"""The bodies of the ``rrief_train``, ``rrief_gold_watch`` and ``rrief_reextract`` tasks, one
function each, taking the Airflow context.

Like :mod:`extractors.pipeline.tasks` they read the settings when the task runs, open and
dispose an engine, and call the library functions of :mod:`extractors.lifecycle`; what they
return is small and JSON-safe (XCom). The assets they update live here so the DAG files and the
task bodies name the same ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException

from extractors.lifecycle.gate import GateMargins, GateResult, gate, summary_metrics
from extractors.lifecycle.registry import production_adapter
from extractors.pipeline.context import RunContext
from extractors.pipeline.tasks import LLM_BACKENDS  # hf, openai, cascade: one list
from extractors.settings import Settings, get_settings
from extractors.warehouse.db import make_engine

log = logging.getLogger("rrief.lifecycle")

Context = Mapping[str, Any]

# Updated by rrief_gold_watch when a schema has enough new final labels (extra: schema).
GOLD = Asset(name="rrief_gold", uri="rrief://annotation/gold")
# Updated by rrief_train's promote task (extra: schema, adapter_id); starts rrief_reextract.
PROMOTED = Asset(name="rrief_adapter_promoted", uri="rrief://registry/promotions")
LLM_ROUTING: dict[str, Any] = {"queue": "gpu", "pool": "llm"}  # the GPU worker's queue and pool


def default_args(retries: int, **extra: Any) -> dict[str, Any]:
    """The lifecycle DAGs' task defaults: retries, and every failure recorded in
    ``ops.task_failures`` and sent by mail/webhook (as in rrief_daily)."""
    from datetime import timedelta

    from extractors.pipeline import tasks as pipeline_tasks

    return {
        "owner": "rrief",
        "retries": retries,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": [pipeline_tasks.on_failure, pipeline_tasks.AlertNotifier()],
        **extra,
    }


class GateFailed(RuntimeError):
    """The candidate is worse than the current extractor: the task fails with the table."""

    def __init__(self, schema: str, result: GateResult) -> None:
        self.result = result
        super().__init__(
            f"{schema}: the candidate adapter failed the gate and was not registered\n"
            + result.table()
        )


def _params(context: Context) -> dict[str, Any]:
    return dict(context.get("params") or {})


def _event_extra(context: Context, key: str) -> Any:
    """``key`` from the extras of the asset events that triggered this run (newest wins)."""
    events = context.get("triggering_asset_events") or {}
    found = None
    for evs in events.values():
        for ev in evs:
            value = (getattr(ev, "extra", None) or {}).get(key)
            found = value if value is not None else found
    return found


def _schema(context: Context, settings: Settings) -> Any:
    from extractors.schemas import get_schema

    name = _event_extra(context, "schema") or _params(context).get("schema")
    if not name:
        raise ValueError(
            "no schema: trigger with params {'schema': 'cxr'} or by the rrief_gold asset"
        )
    return get_schema(str(name), settings.schema_dirs())


def _by(context: Context) -> str:
    return f"airflow:{context.get('dag_run').dag_id if context.get('dag_run') else 'rrief'}:{context.get('run_id')}"


# --- rrief_gold_watch -------------------------------------------------------------------------


def watch_gold(context: Context) -> dict[str, Any]:
    """Count each schema's final train-split labels beyond those the newest adapter was trained
    on; with at least ``RRIEF_TRAIN_MIN_NEW_LABELS`` the task updates the ``rrief_gold`` asset
    (which starts rrief_train for that schema), otherwise it is skipped (no asset event)."""
    from extractors.gold.annotations import export_gold, schema_versions
    from extractors.lifecycle.registry import list_adapters
    from extractors.schemas import get_schema

    settings = get_settings()
    engine = make_engine(settings.warehouse_url)
    counts: dict[str, int] = {}
    try:
        for ref in sorted(schema_versions(engine)):  # schema ids of the tasks, e.g. cxr@1
            schema = get_schema(ref, settings.schema_dirs())
            n_train = len(export_gold(engine, schema, "train").records)
            trained = [a.training_size for a in list_adapters(engine, schema.name)]
            counts[schema.name] = n_train - max(trained, default=0)
    finally:
        engine.dispose()
    ready = [s for s, n in counts.items() if n >= settings.train_min_new_labels]
    log.info(
        "new final labels per schema: %s (threshold %d)", counts, settings.train_min_new_labels
    )
    if not ready:
        raise AirflowSkipException(f"no schema has {settings.train_min_new_labels} new labels")
    events = context.get("outlet_events")
    if events is not None:
        events[GOLD].extra = {"schema": ready[0], "new_labels": counts[ready[0]]}
    return {"schema": ready[0], "new_labels": counts}


# --- rrief_train ------------------------------------------------------------------------------


def snapshot(context: Context) -> dict[str, Any]:
    """Freeze the schema's gold train and test splits into hashed, read-only files."""
    from extractors.lifecycle.snapshot import snapshot_gold

    settings = get_settings()
    schema = _schema(context, settings)
    root = Path(settings.lifecycle_dir) / "snapshots"
    engine = make_engine(settings.warehouse_url)
    try:
        train = snapshot_gold(engine, schema, "train", root)
        test = snapshot_gold(engine, schema, "test", root)
    finally:
        engine.dispose()
    return {"schema": schema.name, "train": train.model_dump(), "test": test.model_dump()}


def train(context: Context, snap: Mapping[str, Any]) -> dict[str, Any]:
    """Train the candidate LoRA adapter on the train snapshot into ``RRIEF_ADAPTERS_DIR``."""
    from extractors.lifecycle.trainer import candidate_dir, train_candidate
    from extractors.schemas import get_schema

    settings = get_settings()
    if not settings.base_model:
        raise ValueError("RRIEF_BASE_MODEL is not set: training needs the local base model")
    schema = get_schema(snap["schema"], settings.schema_dirs())
    hyperparameters = dict(_params(context).get("hyperparameters") or {})
    output = candidate_dir(
        Path(settings.adapters_dir), schema, snap["train"]["sha256"], hyperparameters
    )
    path = train_candidate(
        schema, Path(settings.base_model), Path(snap["train"]["path"]), output, hyperparameters
    )
    return {"schema": schema.name, "adapter_dir": str(path)}


def evaluate(
    context: Context, snap: Mapping[str, Any], trained: Mapping[str, Any]
) -> dict[str, Any]:
    """Extract the test snapshot with the candidate, the production adapter (or, with none, the
    rules) and the rules; score the candidate against the current one (paired bootstrap)."""
    from extractors.extract.configured import configured_extractor
    from extractors.lifecycle.evaluation import compare, write_predictions
    from extractors.schemas import get_schema

    settings = get_settings()
    schema = get_schema(snap["schema"], settings.schema_dirs())
    test_path = Path(snap["test"]["path"])
    adapter_dir = Path(trained["adapter_dir"])
    out = Path(settings.lifecycle_dir) / "evaluations" / adapter_dir.name
    engine = make_engine(settings.warehouse_url)
    try:
        current = production_adapter(engine, schema.name)
    finally:
        engine.dispose()
    systems: dict[str, Any] = {"candidate": ("hf", str(adapter_dir)), "rules": ("rules", None)}
    if current is not None:
        systems["current"] = ("hf", current.path)
    paths: dict[str, Path] = {}
    for name, (backend, adapter) in systems.items():
        given = {"adapter": adapter} if adapter else {}
        extractor = configured_extractor(settings, backend, schema, **given)
        paths[name] = write_predictions(extractor, schema, test_path, out / f"{name}.jsonl")
        del extractor
    current_name = f"production {current.adapter_id}" if current else "rules"
    comparison = compare(
        schema,
        test_path,
        paths["candidate"],
        paths.get("current", paths["rules"]),
        paths["rules"],
        current_name,
    )
    (out / "comparison.json").write_text(comparison.model_dump_json(indent=2), encoding="utf-8")
    return comparison.model_dump(mode="json")


def gate_candidate(
    context: Context,
    comparison: Mapping[str, Any],
    snap: Mapping[str, Any],
    trained: Mapping[str, Any],
) -> dict[str, Any]:
    """Pass or fail the candidate (``RRIEF_GATE_*``, params may override). A failure is an
    ``ops.alerts`` row (check ``gate``) and a failed task whose log holds the table."""
    from extractors.health.alerts import Alert, store_alerts
    from extractors.lifecycle.evaluation import Comparison

    settings = get_settings()
    params = _params(context)
    micro, drop = params.get("gate_micro_f1_margin"), params.get("gate_label_f1_drop")
    margins = GateMargins(
        micro_f1_margin=settings.gate_micro_f1_margin if micro is None else micro,
        label_f1_drop=settings.gate_label_f1_drop if drop is None else drop,
    )
    comp = Comparison.model_validate(comparison)
    result = gate(comp.comparison_rows, margins, comp.current, comp.rules_by_key())
    log.info(
        "gate for %s on %d test reports:\n%s", trained["adapter_dir"], comp.n_test, result.table()
    )
    if not result.passed:
        now = datetime.now(UTC).replace(microsecond=0)
        run = RunContext.from_airflow(context)
        micro = next((r for r in result.rows if r.kind == "micro"), None)
        alert = Alert(
            window_start=now,
            window_end=now,
            check_name="gate",
            schema_name=snap["schema"],
            subject=f"{snap['schema']}:{Path(trained['adapter_dir']).name}",
            observed=micro.candidate if micro else None,
            expected=micro.current if micro else None,
            threshold=margins.micro_f1_margin,
            n=comp.n_test,
            message=f"candidate {Path(trained['adapter_dir']).name} failed the gate against "
            f"{comp.current}: " + "; ".join(result.failures),
            details={"table": result.table(), "failures": result.failures},
            dag_id=run.dag_id,
            run_id=run.run_id,
        )
        engine = make_engine(settings.warehouse_url)
        try:
            store_alerts(engine, now, [alert], checks=("gate",))
        finally:
            engine.dispose()
        raise GateFailed(snap["schema"], result)
    return {
        **summary_metrics(result),
        "n_test": comp.n_test,
        "test_sha256": snap["test"]["sha256"],
        "compared_with": comp.current,
    }


def register(context: Context, trained: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """Register the candidate with its test-split metrics in ``ops.adapters``."""
    from extractors.lifecycle.registry import record_from_dir
    from extractors.lifecycle.registry import register as register_record

    settings = get_settings()
    engine = make_engine(settings.warehouse_url)
    try:
        record = register_record(
            engine, record_from_dir(trained["adapter_dir"], _by(context), dict(metrics))
        )
    finally:
        engine.dispose()
    return record.adapter_id


def promote(context: Context, adapter_id: str) -> dict[str, Any]:
    """Promote when ``auto_promote`` (param, else ``RRIEF_AUTO_PROMOTE``) is on and update the
    ``rrief_adapter_promoted`` asset; otherwise skip, leaving the candidate for a person
    (`rrief adapters promote`)."""
    from extractors.lifecycle.registry import promote as promote_adapter

    settings = get_settings()
    auto = _params(context).get("auto_promote")
    if not (settings.auto_promote if auto is None else auto):
        raise AirflowSkipException(
            f"auto_promote is off: {adapter_id} waits as a candidate for "
            f"`rrief adapters promote {adapter_id}`"
        )
    engine = make_engine(settings.warehouse_url)
    try:
        promoted, retired = promote_adapter(engine, adapter_id, _by(context))
    finally:
        engine.dispose()
    events = context.get("outlet_events")
    if events is not None:
        events[PROMOTED].extra = {"schema": promoted.schema_name, "adapter_id": adapter_id}
    return {"promoted": adapter_id, "retired": retired.adapter_id if retired else None}


# --- rrief_reextract --------------------------------------------------------------------------


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plan_reextract(context: Context) -> list[dict[str, Any]]:
    """Batches to re-extract: the schema of the promotion (asset event) or of the params, or
    every schema with a production adapter; params ``start``/``end`` bound the report dates."""
    from extractors.lifecycle.reextract import plan_reextraction, reextraction_progress

    settings = get_settings()
    if settings.backend not in LLM_BACKENDS:
        raise ValueError(
            f"RRIEF_BACKEND is {settings.backend!r}: the daily run uses no adapter, so there is "
            "nothing to re-extract with; set RRIEF_BACKEND=hf, openai or cascade"
        )
    params = _params(context)
    schema = _event_extra(context, "schema") or params.get("schema")
    engine = make_engine(settings.warehouse_url)
    try:
        schemas = [schema] if schema else [p.schema_name for p in reextraction_progress(engine)]
        batches = [
            b.to_xcom()
            for name in schemas
            for b in plan_reextraction(
                engine,
                str(name),
                settings.batch_size,
                _when(params.get("start")),
                _when(params.get("end")),
            )
        ]
    finally:
        engine.dispose()
    return batches


def reextract(descriptor: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """Re-extract one batch with its planned adapter, unless a newer promotion superseded it."""
    from extractors.lifecycle.reextract import ReextractBatch, check_version, current_choice
    from extractors.pipeline.config import validation_policy
    from extractors.pipeline.extract import extract_batch, extractor_for

    planned = ReextractBatch.model_validate(descriptor)
    if isinstance(context, MutableMapping):
        context["batch_label"] = planned.batch.label
    settings = get_settings()
    engine = make_engine(settings.warehouse_url)
    try:
        choice = current_choice(engine, planned, settings.backend)
        if choice is None:
            return {
                "superseded": True,
                "n_in": 0,
                "n_loaded": 0,
                "n_quarantined": 0,
                "n_errored": 0,
            }
        extractor = extractor_for(planned.batch.report_type, settings, choice)
        check_version(extractor, planned)
        summary = extract_batch(
            planned.batch,
            settings,
            engine,
            RunContext.from_airflow(context),
            policy=validation_policy(settings),
            extractor=extractor,
            results_dir=Path(settings.gx_dir) if settings.gx_dir else None,
            given_adapter_id=choice.adapter_id,
            skip_done=True,
        )
    finally:
        engine.dispose()
    return {"superseded": False, **summary.model_dump()}


def summarize_reextract(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals of the run and the progress per schema (reports on the production adapter)."""
    from extractors.lifecycle.reextract import reextraction_progress

    totals = {
        k: sum(int(s.get(k, 0)) for s in summaries)
        for k in ("n_in", "n_loaded", "n_quarantined", "n_errored")
    }
    totals["superseded_batches"] = sum(1 for s in summaries if s.get("superseded"))
    settings = get_settings()
    engine = make_engine(settings.warehouse_url)
    try:
        progress = [p.model_dump() for p in reextraction_progress(engine)]
    finally:
        engine.dispose()
    for p in progress:
        log.info(
            "%s: %d of %d reports on %s",
            p["schema_name"],
            p["on_current"],
            p["total"],
            p["adapter_id"],
        )
    return {**totals, "progress": progress}
