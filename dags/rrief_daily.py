"""
### rrief_daily — RIS → extraction → Great Expectations → warehouse → dbt

Runs once a day over the previous 24 hours of finalized reports (the data interval is a real
day: `CronTriggerTimetable` with a one-day interval, so catchup and backfills cover each day
exactly once).

1. **prepare_warehouse** — Alembic migrations and roles (idempotent).
2. **fetch** — the interval's reports from the RIS (`RRIEF_RIS_*`), pseudonymized (keyed HMAC,
   `RRIEF_PSEUDONYM_KEY` or the `rrief_pseudonym_key` variable), UPSERTed into `raw.reports`.
3. **plan** — small batch descriptors per report type (key ranges; never report text in XCom).
4. **extract** — one mapped task per batch: extract with `RRIEF_BACKEND`, validate with the
   schema's Great Expectations suites, load passing rows, quarantine failing ones, record
   metrics — one transaction per batch. LLM backends run on the `gpu` queue in the `llm` pool.
5. **summarize** — run totals into `ops.run_metrics`.
6. **dbt_build** — staging → intermediate → marts and their tests; publishes the
   `rrief_marts` asset for downstream DAGs. Trigger with `{"run_dbt": false}` to skip it.
7. **check_health** — label prevalence against the trailing 4 weeks, invalid-output rate and
   volume; a finding writes `ops.alerts` rows and fails the task with the reason
   (docs/health.md).

Running a day twice changes nothing; every failed attempt is recorded in `ops.task_failures`.
All logic lives in `extractors.pipeline`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronTriggerTimetable, Param, dag, get_current_context, task

from extractors.pipeline import tasks
from extractors.settings import get_settings

MARTS = Asset(name="rrief_marts", uri="rrief://warehouse/marts")

# LLM extraction needs the GPU worker and is throttled by the `llm` pool; rules run anywhere.
_LLM = get_settings().backend in ("hf", "openai")
EXTRACT_ROUTING: dict[str, Any] = {"queue": "gpu", "pool": "llm"} if _LLM else {}

default_args: dict[str, Any] = {
    "owner": "rrief",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": tasks.on_failure,
}


@dag(
    dag_id="rrief_daily",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={"run_dbt": Param(True, type="boolean", description="run dbt build at the end")},
    tags=["rrief"],
    doc_md=__doc__,
)
def rrief_daily() -> None:
    @task
    def prepare_warehouse() -> str:
        return tasks.prepare_warehouse(get_current_context())

    @task
    def fetch(revision: str) -> dict[str, Any]:
        return tasks.fetch(get_current_context())

    @task
    def plan(fetched: dict[str, Any]) -> list[dict[str, Any]]:
        return tasks.plan(get_current_context())

    @task(retries=3, **EXTRACT_ROUTING)
    def extract(descriptor: dict[str, Any]) -> dict[str, Any]:
        return tasks.extract(descriptor, get_current_context())

    @task
    def summarize(summaries: list[dict[str, Any]]) -> dict[str, int]:
        # index instead of iterating: iteration probes one XCom past the end (a logged 404)
        return tasks.summarize([summaries[i] for i in range(len(summaries))], get_current_context())

    @task(outlets=[MARTS])
    def dbt_build(totals: dict[str, int]) -> dict[str, Any]:
        return tasks.dbt_build(get_current_context())

    @task(retries=0)  # a failed check is a finding; retrying only repeats it
    def check_health(totals: dict[str, int]) -> dict[str, Any]:
        from extractors.health import check_from_context

        return check_from_context(get_current_context())

    batches = plan(fetch(prepare_warehouse()))
    totals = summarize(extract.expand(descriptor=batches))
    dbt_build(totals)
    check_health(totals)


rrief_daily()
