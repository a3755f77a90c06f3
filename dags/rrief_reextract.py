"""
### rrief_reextract — re-label the warehouse with the production adapter

Started by the `rrief_adapter_promoted` asset (a promotion in rrief_train) or by hand with
params `schema` (empty: every schema with a production adapter) and `start`/`end` (ISO dates of
`report_final_at`; empty: all).

1. **plan** — the reports whose current text the schema's production adapter has not labelled
   yet (their latest valid extraction came from another extractor version), newest days first,
   in batches of `RRIEF_BATCH_SIZE`.
2. **reextract** — one mapped task per batch on the `gpu` queue in the `llm` pool (so the daily
   run keeps its share): extract, validate, load in one transaction per batch. A batch leaves
   out what its adapter already did (a killed run continues where it stopped) and does nothing
   when a newer promotion superseded its adapter.
3. **summarize** — totals and progress (reports on the production adapter / all), also on the
   health page.
4. **dbt** — the same astronomer-cosmos task group as rrief_daily's (incremental models: only
   the re-labelled reports are rebuilt), so the marts carry the new adapter id; trigger with
   `{"run_dbt": false}` to skip it, `{"dbt_full_refresh": true}` to rebuild from scratch.

All logic lives in `extractors.lifecycle`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from extractors.lifecycle import tasks
from extractors.pipeline import tasks as pipeline_tasks
from extractors.pipeline.cosmos import dbt_task_group

LLM_ROUTING = tasks.LLM_ROUTING


@dag(
    dag_id="rrief_reextract",
    schedule=[tasks.PROMOTED],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # a second promotion queues its run behind this one
    default_args=tasks.default_args(retries=2, retry_exponential_backoff=2.0),
    params={
        "schema": Param(
            "", type="string", description="empty: every schema with a production adapter"
        ),
        "start": Param(
            "", type="string", description="ISO date: first report_final_at (empty: all)"
        ),
        "end": Param("", type="string", description="ISO date: end, exclusive (empty: all)"),
        "run_dbt": Param(True, type="boolean", description="run the dbt models at the end"),
        "dbt_full_refresh": Param(
            False, type="boolean", description="rebuild the incremental dbt models from scratch"
        ),
    },
    tags=["rrief", "lifecycle"],
    doc_md=__doc__,
)
def rrief_reextract() -> None:
    @task
    def plan() -> list[dict[str, Any]]:
        return tasks.plan_reextract(get_current_context())

    @task(retries=3, map_index_template="{{ batch_label }}", **LLM_ROUTING)
    def reextract(descriptor: dict[str, Any]) -> dict[str, Any]:
        return tasks.reextract(descriptor, get_current_context())

    @task(trigger_rule="none_failed")
    def summarize(summaries: list[dict[str, Any]]) -> dict[str, Any]:
        return tasks.summarize_reextract(summaries[:])

    @task.short_circuit
    def dbt_enabled() -> bool:
        return pipeline_tasks.dbt_enabled(get_current_context())

    models = dbt_task_group(
        pipeline_tasks.dbt_layout(), group_id="dbt", default_args={"retries": 1}
    )
    summarize(reextract.expand(descriptor=plan())) >> dbt_enabled() >> models


rrief_reextract()
