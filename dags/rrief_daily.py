"""
### rrief_daily — RIS → extraction → Great Expectations → warehouse → dbt

Runs once a day over the previous 24 hours of finalized reports (the data interval is a real
day: `CronTriggerTimetable` with a one-day interval, so catchup and backfills cover each day
exactly once).

1. **check_warehouse** — the warehouse is at this code's Alembic revision, else the run fails
   saying to run `rrief warehouse upgrade` (airflow-init does it on deploy; no DAG run migrates).
2. **fetch** — the interval's reports from the RIS (`RRIEF_RIS_*`), pseudonymized (keyed HMAC,
   `RRIEF_PSEUDONYM_KEY` or the `rrief_pseudonym_key` variable), UPSERTed into `raw.reports`;
   the `RRIEF_FETCH_LOOKBACK_DAYS` before it are re-read for late and amended reports.
3. **reconcile** — RIS vs warehouse report counts per day (`RRIEF_RECONCILE_DAYS`); a
   difference is an `ops.alerts` row and a failed task.
4. **plan** / **plan_llm** — small batch descriptors per report type (key ranges; never report
   text in XCom), the look-back's not yet extracted reports included. `plan` plans when
   `RRIEF_BACKEND` is rules, `plan_llm` when it is hf or openai; the other plans nothing. The
   backend is read when they run, never when this file is parsed.
5. **extract** / **extract_llm** — one mapped task per batch, named by report type and key
   range: extract with `RRIEF_BACKEND`, validate with the schema's Great Expectations suites
   (results kept in `RRIEF_GX_DIR`, Data Docs on the health page), load passing rows,
   quarantine failing ones, record metrics — one transaction per batch. `extract_llm` runs on
   the GPU worker's `gpu` queue in the `llm` pool.
6. **summarize** — run totals into `ops.run_metrics`.
7. **dbt_enabled** — trigger with `{"run_dbt": false}` to skip the dbt steps, with
   `{"dbt_full_refresh": true}` to rebuild the incremental models from scratch.
8. **dbt_source_freshness** — `dbt source freshness` over `raw`; a stale table is an
   `ops.alerts` row (check `freshness`), an error fails the run before the models.
9. **dbt** — an astronomer-cosmos task group rendered from the dbt manifest (`make
   dbt-manifest`): one task per model building it and its tests (`RRIEF_DBT_EXECUTION_MODE=build`:
   one `dbt build` task), profile from the `rrief_warehouse` Connection.
10. **dbt_docs** — `dbt docs generate`, served read-only on the "RRIEF dbt docs" page; publishes
   the `rrief_marts` asset for downstream DAGs.
11. **check_health** — label prevalence against the trailing 4 weeks, invalid-output rate and
   volume; a finding writes `ops.alerts` rows and fails the task with the reason
   (docs/health.md).

Every failed task is recorded in `ops.task_failures` and sent by mail and/or webhook
(`RRIEF_ALERT_*`). Running a day twice changes nothing. All logic lives in
`extractors.pipeline`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronTriggerTimetable, Param, dag, get_current_context, task

from extractors.pipeline import tasks
from extractors.pipeline.cosmos import dbt_task_group

MARTS = Asset(name="rrief_marts", uri="rrief://warehouse/marts")
LLM_ROUTING: dict[str, Any] = {"queue": "gpu", "pool": "llm"}  # the GPU worker's queue and pool
BATCH_NAME = "{{ batch_label }}"  # set by tasks.extract: report type, key range, size

default_args: dict[str, Any] = {
    "owner": "rrief",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": [tasks.on_failure, tasks.AlertNotifier()],
}


@dag(
    dag_id="rrief_daily",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        "run_dbt": Param(True, type="boolean", description="run the dbt steps at the end"),
        "dbt_full_refresh": Param(
            False, type="boolean", description="rebuild the incremental dbt models from scratch"
        ),
    },
    tags=["rrief"],
    doc_md=__doc__,
)
def rrief_daily() -> None:
    @task
    def check_warehouse() -> str:
        return tasks.check_warehouse(get_current_context())

    @task
    def fetch() -> dict[str, Any]:
        return tasks.fetch(get_current_context())

    @task(retries=0)  # a difference is a finding; retrying only repeats it
    def reconcile() -> dict[str, Any]:
        return tasks.reconcile(get_current_context())

    @task
    def plan() -> list[dict[str, Any]]:
        return tasks.plan(get_current_context(), llm=False)

    @task
    def plan_llm() -> list[dict[str, Any]]:
        return tasks.plan(get_current_context(), llm=True)

    @task(retries=3, map_index_template=BATCH_NAME)
    def extract(descriptor: dict[str, Any]) -> dict[str, Any]:
        return tasks.extract(descriptor, get_current_context())

    @task(retries=3, map_index_template=BATCH_NAME, **LLM_ROUTING)
    def extract_llm(descriptor: dict[str, Any]) -> dict[str, Any]:
        return tasks.extract(descriptor, get_current_context())

    @task(trigger_rule="none_failed")  # one of the two extract tasks maps over no batch
    def summarize(rules: list[dict[str, Any]], llm: list[dict[str, Any]]) -> dict[str, int]:
        return tasks.summarize([*rules[:], *llm[:]], get_current_context())  # one read each

    @task.short_circuit
    def dbt_enabled() -> bool:
        return tasks.dbt_enabled(get_current_context())

    @task(retries=0)  # stale sources are a finding; retrying only repeats it
    def dbt_source_freshness() -> dict[str, Any]:
        return tasks.source_freshness(get_current_context())

    @task(outlets=[MARTS])
    def dbt_docs() -> dict[str, Any]:
        return tasks.dbt_docs(get_current_context())

    @task(retries=0)  # a failed check is a finding; retrying only repeats it
    def check_health() -> dict[str, Any]:
        from extractors.health import check_from_context

        return check_from_context(get_current_context())

    rules, llm = plan(), plan_llm()
    check_warehouse() >> fetch() >> [rules, llm, reconcile()]
    totals = summarize(extract.expand(descriptor=rules), extract_llm.expand(descriptor=llm))
    # a failed model or test is retried once (a lost connection), not the DAG's twice
    models = dbt_task_group(tasks.dbt_layout(), group_id="dbt", default_args={"retries": 1})
    totals >> dbt_enabled() >> dbt_source_freshness() >> models >> dbt_docs()
    totals >> check_health()


rrief_daily()
