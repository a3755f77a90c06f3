"""The rrief_daily DAG: imports cleanly, is declared as the contract says, and runs end to end
with ``dag.test()`` on the demo RIS (SQLite Airflow metadata DB, real PostgreSQL warehouse)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from extractors.demo.airflow_home import DAGS_FOLDER, configure_airflow, load_dag
from extractors.demo.reports import DemoReport, generate_reports
from extractors.demo.ris import seed_ris
from extractors.demo.run import demo_environment, logical_dates
from extractors.privacy import DEMO_PSEUDONYM_KEY
from tests import pg

DAY = date(2025, 3, 3)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway AIRFLOW_HOME with a SQLite metadata DB (created once per module)."""
    home = tmp_path_factory.mktemp("airflow")
    saved = dict(os.environ)
    configure_airflow(home)
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def dag(airflow_home: Path) -> Any:
    return load_dag("rrief_daily")


def test_dag_folder_imports_without_errors(airflow_home: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER), safe_mode=False)
    assert bag.import_errors == {}
    assert "rrief_daily" in bag.dag_ids


def test_dag_is_declared_as_the_contract_says(dag: Any) -> None:
    from airflow.sdk import CronTriggerTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    assert isinstance(dag.timetable, CronTriggerTimetable)
    core = coerce_to_core_timetable(dag.timetable)  # what the scheduler and dag.test() use
    interval = core.infer_manual_data_interval(run_after=datetime(2025, 3, 4, 2, tzinfo=UTC))
    assert interval.end - interval.start == timedelta(days=1)  # a real day, not zero-length
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.doc_md and "rrief_daily" in dag.doc_md
    assert set(dag.task_ids) == {
        "check_health",
        "prepare_warehouse",
        "fetch",
        "plan",
        "extract",
        "summarize",
        "dbt_build",
    }
    extract = dag.get_task("extract")
    assert extract.retries == 3 and extract.retry_exponential_backoff
    assert extract.on_failure_callback
    assert [a.uri for a in dag.get_task("dbt_build").outlets] == ["rrief://warehouse/marts"]
    assert dag.get_task("plan").downstream_task_ids == {"extract"}


@pytest.fixture(scope="module")
def demo_reports() -> list[DemoReport]:
    return list(generate_reports(DAY, days=2, per_day=45, seed=5))


@pytest.fixture(scope="module")
def pipeline_env(
    airflow_home: Path,
    warehouse_url: str,
    demo_reports: list[DemoReport],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    work = tmp_path_factory.mktemp("demo")
    seed_ris(work / "ris.sqlite", demo_reports)
    saved = dict(os.environ)
    os.environ.update(demo_environment(work, warehouse_url, DEMO_PSEUDONYM_KEY))
    yield warehouse_url
    os.environ.clear()
    os.environ.update(saved)


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every raw and mart table, in a stable order (timestamps of rewrites included)."""
    tables = {
        "raw.reports": "report_key",
        "raw.extractions": "extraction_id",
        "raw.quarantine": "quarantine_id",
        "marts.cxr_findings": "report_key",
        "marts.mammo_exams": "report_key",
        "marts.ccta_exams": "report_key",
        "marts.cohort_pleural_effusion": "patient_key",
        "marts.cohort_birads_4plus": "patient_key",
        "marts.cohort_cad_rads_3plus": "patient_key",
    }
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY {o}"))]
            for t, o in tables.items()
        }


def run_dag(dag: Any, logical: datetime, run_dbt: bool) -> tuple[Any, dict[str, str]]:
    dr = dag.test(logical_date=logical, run_conf={"run_dbt": run_dbt})
    return dr, {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


def run_ok(dag: Any, logical: datetime, run_dbt: bool) -> Any:
    dr, states = run_dag(dag, logical, run_dbt)
    assert str(dr.state) == "success", states
    return dr


@pytest.mark.slow
def test_dag_runs_end_to_end_idempotently(
    dag: Any, pipeline_env: str, warehouse_engine: Engine, demo_reports: list[DemoReport]
) -> None:
    pg.truncate_warehouse(warehouse_engine)
    dates = logical_dates(DAY, 2)  # 3 runs cover both days (02:00 UTC triggers)
    runs = [run_ok(dag, d, run_dbt=(i == len(dates) - 1)) for i, d in enumerate(dates)]
    assert runs[1].data_interval_start == datetime(2025, 3, 3, 2, tzinfo=UTC)
    with warehouse_engine.connect() as conn:
        n_reports = conn.execute(text("SELECT count(*) FROM raw.reports")).scalar_one()
        totals = conn.execute(
            text(
                "SELECT sum(n_in), sum(n_loaded), sum(n_quarantined), sum(n_errored) "
                "FROM ops.run_metrics WHERE task_id = 'summarize'"
            )
        ).one()
        truth = {r.accession_number: r.truth for r in demo_reports}
        cohort = conn.execute(
            text("SELECT count(*) FROM marts.cohort_pleural_effusion")
        ).scalar_one()
        failures = conn.execute(text("SELECT count(*) FROM ops.task_failures")).scalar_one()
    assert n_reports == len(demo_reports)
    assert totals[0] == n_reports == totals[1] + totals[2] + totals[3]
    assert failures == 0
    # the cohort holds the patients whose generated report affirmed an effusion
    patients = {
        r.patient_id
        for r in demo_reports
        if truth[r.accession_number].get("Pleural Effusion") == "positive"
    }
    assert cohort == len(patients) > 0

    # no raw identifier anywhere in the warehouse (keys and scrubbed text only)
    raw_ids = [r.patient_id for r in demo_reports] + [r.accession_number for r in demo_reports]
    assert pg.find_strings(warehouse_engine, raw_ids) == []

    # the same day again changes nothing
    before = snapshot(warehouse_engine)
    run_ok(dag, dates[1], run_dbt=True)
    assert snapshot(warehouse_engine) == before

    # researchers read marts, never the raw layer
    with warehouse_engine.connect() as conn:
        conn.execute(text("SET ROLE researcher"))
        assert conn.execute(text("SELECT count(*) FROM marts.cxr_findings")).scalar_one() > 0
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT report_text FROM raw.reports"))
        conn.rollback()


@pytest.mark.slow
def test_dag_quarantines_forced_validation_failures(
    dag: Any, pipeline_env: str, warehouse_engine: Engine
) -> None:
    pg.truncate_warehouse(warehouse_engine)
    os.environ.update(RRIEF_VALIDATION_MAX_POSITIVE_RATE="0.01", RRIEF_VALIDATION_MIN_REPORTS="1")
    try:
        dr, states = run_dag(dag, logical_dates(DAY, 1)[1], run_dbt=False)
    finally:
        del (
            os.environ["RRIEF_VALIDATION_MAX_POSITIVE_RATE"],
            os.environ["RRIEF_VALIDATION_MIN_REPORTS"],
        )
    with warehouse_engine.connect() as conn:
        n_typed = conn.execute(
            text("SELECT count(*) FROM raw.reports WHERE report_type IS NOT NULL")
        ).scalar_one()
        n_ext = conn.execute(text("SELECT count(*) FROM raw.extractions")).scalar_one()
        n_q = conn.execute(text("SELECT count(*) FROM raw.quarantine")).scalar_one()
        metrics = conn.execute(
            text(
                "SELECT n_in, n_loaded, n_quarantined, n_errored FROM ops.run_metrics "
                "WHERE run_id = :r AND task_id = 'summarize'"
            ),
            {"r": dr.run_id},
        ).one()
        reasons = conn.execute(
            text("SELECT failed_expectations -> 0 ->> 'reason' FROM raw.quarantine LIMIT 1")
        ).scalar_one()
    assert n_q > 0 and n_ext + n_q == n_typed
    assert metrics[0] == n_typed == metrics[1] + metrics[2] + metrics[3]
    assert metrics[2] == n_q
    assert "prevalence sanity limit" in reasons
    # Every task did its job; the health check then fails the run on purpose, because a day
    # with this many quarantined rows is exactly what data engineers must hear about.
    assert {t: st for t, st in states.items() if st != "success"} == {"check_health": "failed"}
    with warehouse_engine.connect() as conn:
        checks = conn.execute(
            text("SELECT DISTINCT check_name FROM ops.alerts WHERE run_id = :r"), {"r": dr.run_id}
        ).scalars()
        assert "invalid_output_rate" in set(checks)
