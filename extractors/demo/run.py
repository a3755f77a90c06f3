"""Run the whole demo: seed the RIS, run ``rrief_daily`` day by day with ``dag.test()``,
build dbt, and show what a researcher sees."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, text

from extractors.demo.airflow_home import configure_airflow, load_dag
from extractors.demo.reports import generate_reports
from extractors.demo.ris import RIS_TABLE, ris_url, seed_ris

log = logging.getLogger("rrief.demo")

DEMO_START = date(2025, 3, 3)
SCHEDULE_HOUR = 2  # rrief_daily triggers at 02:00 UTC; each run covers the 24 h before
COHORTS = ("cohort_pleural_effusion", "cohort_birads_4plus", "cohort_cad_rads_3plus")


class DemoResult(BaseModel):
    """What the demo did and what a researcher sees afterwards."""

    n_reports: int
    runs: list[dict[str, Any]]
    cohort_sizes: dict[str, int]
    mart_sizes: dict[str, int]
    totals: dict[str, int]


def logical_dates(start: date, days: int) -> list[datetime]:
    """The scheduled runs whose data intervals cover ``days`` days from ``start``: one per
    02:00 trigger, plus the one after the last day (reports signed after 02:00)."""
    first = datetime.combine(start, time(SCHEDULE_HOUR), tzinfo=UTC)
    return [first + timedelta(days=k) for k in range(days + 1)]


def demo_environment(
    workdir: Path, warehouse_url: str, key: str, backend: str = "rules"
) -> dict[str, str]:
    """The ``RRIEF_*`` variables the DAG tasks read in the demo: what a worker's environment
    holds in a deployment (the tasks run in this process under ``dag.test()``)."""
    from extractors.pipeline.connections import connection_json

    ris = workdir / "ris.sqlite"
    return {
        # the Airflow Connections the tasks and dbt (through cosmos) use
        "AIRFLOW_CONN_RRIEF_WAREHOUSE": connection_json(warehouse_url),
        "AIRFLOW_CONN_RRIEF_RIS": connection_json(ris_url(ris)),
        "RRIEF_WAREHOUSE_URL": warehouse_url,
        "RRIEF_PSEUDONYM_KEY": key,
        "RRIEF_BACKEND": backend,
        "RRIEF_DBT_TARGET_PATH": str((workdir / "dbt-target").resolve()),
        "RRIEF_RIS_KIND": "sql",
        "RRIEF_RIS_URL": ris_url(ris),
        "RRIEF_RIS_TABLE": RIS_TABLE,
        "RRIEF_RIS_SOURCE": "demo-ris",
        "RRIEF_GX_DIR": str((workdir / "gx").resolve()),
        "RRIEF_DBT_DOCS_DIR": str((workdir / "dbt-docs").resolve()),
        # one `dbt build` task: the demo's 5-day run took 182 s per model, 91 s so (README)
        "RRIEF_DBT_EXECUTION_MODE": "build",
    }


def run_days(dag: Any, dates: list[datetime], *, dbt_on_last_only: bool) -> list[dict[str, Any]]:
    """``dag.test()`` once per logical date; raise when a run does not succeed."""
    runs = []
    for i, logical in enumerate(dates):
        run_dbt = not dbt_on_last_only or i == len(dates) - 1
        # the demo's first dbt run rebuilds its incremental models (a warehouse of an older
        # demo may hold them as full tables); later runs are incremental, as in production
        first_dbt = run_dbt and not any(r["dbt"] for r in runs)
        conf = {"run_dbt": run_dbt, "dbt_full_refresh": first_dbt}
        dr = dag.test(logical_date=logical, run_conf=conf)
        state = str(dr.state)
        if state != "success":
            failed = [ti.task_id for ti in dr.get_task_instances() if str(ti.state) != "success"]
            raise RuntimeError(f"rrief_daily run for {logical:%Y-%m-%d} ended {state}: {failed}")
        runs.append(
            {
                "logical_date": logical.isoformat(),
                "interval": f"{dr.data_interval_start:%Y-%m-%d %H:%M} → {dr.data_interval_end:%Y-%m-%d %H:%M}",
                "run_id": dr.run_id,
                "state": state,
                "dbt": run_dbt,
            }
        )
    return runs


def _set_role(conn: Any, role: str) -> None:
    quoted = conn.dialect.identifier_preparer.quote_identifier(role)
    conn.execute(text(f"SET ROLE {quoted}"))


def researcher_view(engine: Engine, role: str) -> tuple[dict[str, int], dict[str, int]]:
    """Cohort and mart sizes, read as the researcher role (marts only)."""
    cohorts: dict[str, int] = {}
    marts: dict[str, int] = {}
    with engine.connect() as conn:
        _set_role(conn, role)
        for name in COHORTS:
            cohorts[name] = conn.execute(text(f"SELECT count(*) FROM marts.{name}")).scalar_one()
        for name in ("cxr_findings", "mammo_exams", "ccta_exams"):
            marts[name] = conn.execute(text(f"SELECT count(*) FROM marts.{name}")).scalar_one()
        conn.execute(text("RESET ROLE"))
    return cohorts, marts


def run_totals(engine: Engine, run_ids: list[str]) -> dict[str, int]:
    """Sum of the summarize rows of the given runs (in = loaded + quarantined + errored)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT coalesce(sum(n_in),0), coalesce(sum(n_loaded),0), "
                "coalesce(sum(n_quarantined),0), coalesce(sum(n_errored),0) "
                "FROM ops.run_metrics WHERE task_id = 'summarize' AND run_id = ANY(:ids)"
            ),
            {"ids": run_ids},
        ).one()
    return dict(zip(("n_in", "n_loaded", "n_quarantined", "n_errored"), map(int, row), strict=True))


def run_demo(
    workdir: Path,
    warehouse_url: str,
    key: str,
    *,
    backend: str = "rules",
    days: int = 5,
    per_day: int = 80,
    dbt_on_last_only: bool = True,
    researcher_role: str = "researcher",
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Seed, run every day, build dbt; ``warehouse_url`` must be reachable (not started here)."""
    from extractors.warehouse.db import make_engine
    from extractors.warehouse.migrate import upgrade
    from extractors.warehouse.roles import ensure_roles

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    reports = list(generate_reports(DEMO_START, days=days, per_day=per_day))
    n = seed_ris(workdir / "ris.sqlite", reports)
    echo(f"seeded the demo RIS with {n} reports over {days} days ({workdir / 'ris.sqlite'})")

    engine = make_engine(warehouse_url)
    try:  # what `rrief warehouse upgrade` does once per deployment: the DAG never migrates
        revision = upgrade(engine)
        ensure_roles(engine, researcher_role=researcher_role)
    finally:
        engine.dispose()
    echo(f"warehouse at revision {revision}; roles and grants applied")

    os.environ.update(demo_environment(workdir, warehouse_url, key, backend))
    took = configure_airflow(workdir / "airflow")
    echo(f"Airflow metadata DB (SQLite) ready in {took:.1f} s")
    dag = load_dag()
    runs = run_days(dag, logical_dates(DEMO_START, days), dbt_on_last_only=dbt_on_last_only)
    for r in runs:
        echo(f"  rrief_daily {r['interval']}: {r['state']}" + ("  + dbt build" if r["dbt"] else ""))

    engine = make_engine(warehouse_url)
    try:
        cohorts, marts = researcher_view(engine, researcher_role)
        totals = run_totals(engine, [r["run_id"] for r in runs])
    finally:
        engine.dispose()
    return DemoResult(n_reports=n, runs=runs, cohort_sizes=cohorts, mart_sizes=marts, totals=totals)


SAMPLE_QUERY = """\
SELECT c.index_exam_at::date AS exam_day, count(*) AS patients,
       count(*) FILTER (WHERE f.cardiomegaly = 'positive') AS with_cardiomegaly
FROM marts.cohort_pleural_effusion c
JOIN marts.cxr_findings f ON f.report_key = c.index_report_key
GROUP BY 1 ORDER BY 1"""


def sample_query(engine: Engine, role: str) -> list[tuple[Any, ...]]:
    """The sample researcher query of the demo, run as the researcher role."""
    with engine.connect() as conn:
        _set_role(conn, role)
        rows = [tuple(r) for r in conn.execute(text(SAMPLE_QUERY)).all()]
        conn.execute(text("RESET ROLE"))
    return rows
