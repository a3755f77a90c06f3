"""The rrief_daily DAG: imports cleanly, is declared as the contract says, and runs end to end
with ``dag.test()`` on the demo RIS (SQLite Airflow metadata DB, real PostgreSQL warehouse)."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    dbt_tasks = {t for t in dag.task_ids if t.startswith("dbt.")}
    assert set(dag.task_ids) - dbt_tasks == {
        "check_warehouse",
        "fetch",
        "reconcile",
        "plan",
        "plan_llm",
        "extract",
        "extract_llm",
        "summarize",
        "dbt_enabled",
        "dbt_source_freshness",
        "dbt_docs",
        "check_health",
    }
    # cosmos: one task per model (its build and tests), dbt from its own venv, the profile from
    # the rrief_warehouse Connection; a test over two models runs after both
    assert {"dbt.cxr_findings_model_build", "dbt.cohort_pleural_effusion_model_build"} <= dbt_tasks
    mart = dag.get_task("dbt.cxr_findings_model_build")
    assert type(mart).__name__ == "DbtBuildLocalOperator"
    assert str(mart.dbt_executable_path).endswith(".venv-dbt/bin/dbt")
    assert mart.profile_config.profile_mapping.conn_id == "rrief_warehouse"
    assert "dbt.int_extractions__latest_valid_model_build" in mart.upstream_task_ids
    assert mart.retries == 1
    for name in ("extract", "extract_llm"):
        extract = dag.get_task(name)
        assert extract.retries == 3 and extract.retry_exponential_backoff == 2.0
        assert extract.map_index_template == "{{ batch_label }}"
        names = {type(cb).__name__ for cb in extract.on_failure_callback}
        assert names == {"function", "AlertNotifier"}  # ops.task_failures and the notifier
    # LLM batches run on the GPU worker's queue and pool; rules batches anywhere
    llm, rules = dag.get_task("extract_llm"), dag.get_task("extract")
    assert (llm.queue, llm.pool) == ("gpu", "llm")
    assert rules.queue != "gpu" and rules.pool != "llm"
    assert [a.uri for a in dag.get_task("dbt_docs").outlets] == ["rrief://warehouse/marts"]
    # order by >>, not by unused arguments
    assert dag.get_task("check_warehouse").downstream_task_ids == {"fetch"}
    assert dag.get_task("fetch").downstream_task_ids == {"plan", "plan_llm", "reconcile"}
    assert dag.get_task("plan").downstream_task_ids == {"extract"}
    assert dag.get_task("plan_llm").downstream_task_ids == {"extract_llm"}
    assert dag.get_task("summarize").downstream_task_ids == {"dbt_enabled", "check_health"}
    # totals >> dbt_enabled >> dbt_source_freshness >> the models >> dbt_docs
    assert dag.get_task("dbt_enabled").downstream_task_ids == {"dbt_source_freshness"}
    roots = dag.get_task("dbt_source_freshness").downstream_task_ids
    assert roots and roots <= dbt_tasks
    leaves = {t for t in dbt_tasks if not dag.get_task(t).downstream_task_ids - {"dbt_docs"}}
    assert dag.get_task("dbt_docs").upstream_task_ids == leaves
    assert dag.get_task("summarize").trigger_rule == "none_failed"


def test_dag_file_reads_no_settings_when_parsed() -> None:
    """Parsing the DAG (every dag-processor loop) must not depend on RRIEF_* settings."""
    import ast

    tree = ast.parse(Path(DAGS_FOLDER, "rrief_daily.py").read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "get_settings" not in names and "environ" not in names and "getenv" not in names


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def mail_sink() -> Iterator[tuple[MailSink, int]]:
    from aiosmtpd.controller import Controller

    sink, port = MailSink(), _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def webhook_sink() -> Iterator[tuple[list[dict[str, Any]], str]]:
    """A local HTTP server that keeps the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}/hooks/rrief?token=secret"
    finally:
        server.shutdown()
        server.server_close()


def alert_environment(smtp_port: int, webhook_url: str) -> dict[str, str]:
    """Settings and the Airflow SMTP connection that send alerts to the local sinks."""
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_port,
        "extra": {"disable_ssl": True, "disable_tls": True, "retry_limit": 0, "timeout": 10},
    }
    return {
        "RRIEF_ALERT_EMAIL_TO": "data-team@hospital.example, oncall@hospital.example",
        "RRIEF_ALERT_EMAIL_FROM": "rrief@hospital.example",
        "RRIEF_ALERT_SMTP_CONN_ID": "rrief_test_smtp",
        "AIRFLOW_CONN_RRIEF_TEST_SMTP": json.dumps(connection),
        "RRIEF_ALERT_WEBHOOK_URL": webhook_url,
    }


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
    # the last run built every model through the cosmos task group, checked source freshness
    # (fresh: no alert) and wrote the docs site the plugin serves
    last = {ti.task_id: str(ti.state) for ti in runs[-1].get_task_instances()}
    dbt_states = {t: st for t, st in last.items() if t.startswith("dbt")}
    assert "dbt.cxr_findings_model_build" in dbt_states
    assert set(dbt_states.values()) == {"success"}, dbt_states
    with warehouse_engine.connect() as conn:
        stale = conn.execute(
            text("SELECT count(*) FROM ops.alerts WHERE check_name = 'freshness'")
        ).scalar_one()
    assert stale == 0
    assert (Path(os.environ["RRIEF_DBT_DOCS_DIR"]) / "static_index.html").stat().st_size > 0
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

    # the same days again change nothing: every raw, staging, intermediate and mart table
    # (and view) is byte-identical, not only equal in count. Not the models built from ops
    # (each run's own latencies and metrics), as ops itself is left out.
    models = DAGS_FOLDER.parent / "dbt" / "models"
    health = {p.stem for p in models.rglob("*.sql") if "source('rrief_ops'" in p.read_text()}
    assert "pipeline_health_daily" in health

    def checksums() -> dict[str, str]:
        found = pg.table_checksums(warehouse_engine)
        return {k: v for k, v in found.items() if k.split(".", 1)[1] not in health}

    before, first = snapshot(warehouse_engine), checksums()
    assert {"raw.reports", "marts.cxr_findings"} <= set(first)
    assert any(name.startswith("staging.") for name in first), sorted(first)
    for i, d in enumerate(dates):
        run_ok(dag, d, run_dbt=(i == len(dates) - 1))
    assert checksums() == first
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
    dag: Any,
    pipeline_env: str,
    warehouse_engine: Engine,
    mail_sink: tuple[MailSink, int],
    webhook_sink: tuple[list[dict[str, Any]], str],
) -> None:
    pg.truncate_warehouse(warehouse_engine)
    sink, smtp_port = mail_sink
    hooks, hook_url = webhook_sink
    forced = {
        "RRIEF_VALIDATION_MAX_POSITIVE_RATE": "0.01",
        "RRIEF_VALIDATION_MIN_REPORTS": "1",
        **alert_environment(smtp_port, hook_url),
    }
    os.environ.update(forced)
    try:
        dr, states = run_dag(dag, logical_dates(DAY, 1)[1], run_dbt=False)
    finally:
        for name in forced:
            del os.environ[name]
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
        kept = conn.execute(
            text(
                "SELECT schema_name, table_name, success, result_path FROM ops.validation_results "
                "WHERE run_id = :r ORDER BY success, result_path"
            ),
            {"r": dr.run_id},
        ).all()
    assert n_q > 0 and n_ext + n_q == n_typed
    assert metrics[0] == n_typed == metrics[1] + metrics[2] + metrics[3]
    assert metrics[2] == n_q
    assert "prevalence sanity limit" in reasons
    # Every task did its job; the health check then fails the run on purpose, because a day
    # with this many quarantined rows is exactly what data engineers must hear about. The rules
    # backend planned nothing for the GPU route, so extract_llm mapped over no batch; run_dbt
    # false: dbt_enabled short-circuits and every dbt task after it is skipped.
    dbt_after = {t for t in states if t.startswith("dbt") and t != "dbt_enabled"}
    assert "dbt.cxr_findings_model_build" in dbt_after and states["dbt_enabled"] == "success"
    assert {t: st for t, st in states.items() if st != "success"} == {
        "check_health": "failed",
        "extract_llm": "skipped",
        **dict.fromkeys(dbt_after, "skipped"),
    }
    with warehouse_engine.connect() as conn:
        checks = conn.execute(
            text("SELECT DISTINCT check_name FROM ops.alerts WHERE run_id = :r"), {"r": dr.run_id}
        ).scalars()
        assert "invalid_output_rate" in set(checks)

    # the failure reached people: one mail through the SMTP provider, one webhook POST
    (mail,) = sink.messages
    assert mail["Subject"] == "[RRIEF] rrief_daily.check_health failed for 2025-03-03"
    assert mail["From"] == "rrief@hospital.example"
    assert "data-team@hospital.example" in mail["To"] and "oncall@hospital.example" in mail["To"]
    body = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    html = body.get_payload(decode=True).decode()
    assert "PipelineHealthError" in html and "invalid-output rate" in html
    (hook,) = hooks
    assert hook["task_id"] == "check_health" and hook["run_id"] == dr.run_id
    assert hook["subject"] == mail["Subject"] and "invalid-output rate" in hook["text"]

    # every batch's GX results were kept; the failed ones open as GX Data Docs pages
    gx_dir = os.environ["RRIEF_GX_DIR"]
    assert {row.table_name for row in kept} >= {"labels", "prevalence"}
    failed = [row for row in kept if not row.success]
    assert failed and all(row.table_name == "prevalence" for row in failed)
    for row in kept:
        assert Path(gx_dir, "validations", f"{row.result_path}.json").is_file()
    from fastapi.testclient import TestClient

    from extractors.health.app import create_app

    client = TestClient(create_app(lambda: warehouse_engine, gx_dir=gx_dir))
    page = client.get("/", params={"last_day": "2025-03-03", "days": 7}).text
    link = f"data-docs/{failed[0].result_path}"
    assert "Validation results" in page and link in page
    docs = client.get(f"/{link}")
    assert docs.status_code == 200, docs.text
    shown = " ".join(re.sub(r"<[^>]+>", " ", docs.text).split())  # the page as text
    assert "Expectation Validation Result" in shown and "Status: Failed" in shown
    assert "positive Pleural Effusion" in shown  # the finding whose share was too high
    assert docs.headers["content-security-policy"].startswith("default-src 'none'")
    assert client.get("/data-docs/../../etc/passwd").status_code in (400, 404)


@pytest.mark.slow
def test_dag_loads_late_reports_once_and_reconciles(
    dag: Any,
    pipeline_env: str,
    warehouse_engine: Engine,
    mail_sink: tuple[MailSink, int],
    webhook_sink: tuple[list[dict[str, Any]], str],
) -> None:
    from tests.test_late_reports import add_late_report

    pg.truncate_warehouse(warehouse_engine)
    ris_file = Path(os.environ["RRIEF_RIS_URL"].removeprefix("sqlite:///"))
    seed_ris(ris_file, list(generate_reports(DAY, days=2, per_day=45, seed=5)))
    dates = logical_dates(DAY, 2)
    runs = [run_ok(dag, d, run_dbt=False) for d in dates[:2]]
    # a report of the second run's day reaches the RIS after that run
    add_late_report(ris_file, runs[1].data_interval_start + timedelta(hours=3), "LATE-1")
    runs.append(run_ok(dag, dates[2], run_dbt=False))  # default look-back: 2 days
    with warehouse_engine.connect() as conn:
        n_ris = len(list(generate_reports(DAY, days=2, per_day=45, seed=5))) + 1
        assert conn.execute(text("SELECT count(*) FROM raw.reports")).scalar_one() == n_ris
        typed = conn.execute(
            text("SELECT count(*) FROM raw.reports WHERE report_type IS NOT NULL")
        ).scalar_one()
        extracted = conn.execute(
            text(
                "SELECT sum(n_in) FROM ops.run_metrics WHERE task_id = 'summarize' "
                "AND run_id = ANY(:ids)"
            ),
            {"ids": [r.run_id for r in runs]},
        ).scalar_one()
        fetched = conn.execute(
            text("SELECT sum(n_in) FROM ops.run_metrics WHERE task_id = 'fetch'")
        ).scalar_one()
    assert extracted == typed  # the late report extracted once, nothing twice
    assert fetched == n_ris - 1  # fetch metrics count each day once (the late one: look-back)
    late_batches = [
        ti.rendered_map_index
        for ti in runs[2].get_task_instances()
        if ti.task_id == "extract" and " late " in (ti.rendered_map_index or "")
    ]
    assert (
        late_batches and late_batches[0].startswith("cxr late ") and late_batches[0].endswith("(1)")
    )

    # later than the look-back: only the reconciliation can see it, and it says so
    sink, smtp_port = mail_sink
    hooks, hook_url = webhook_sink
    env = {"RRIEF_FETCH_LOOKBACK_DAYS": "0", **alert_environment(smtp_port, hook_url)}
    os.environ.update(env)
    try:
        add_late_report(ris_file, runs[1].data_interval_start + timedelta(hours=4), "LATE-2")
        dr, states = run_dag(dag, dates[2] + timedelta(days=1), run_dbt=False)
    finally:
        for name in env:
            del os.environ[name]
    assert states["reconcile"] == "failed" and states["fetch"] == "success"
    with warehouse_engine.connect() as conn:
        alert = conn.execute(
            text(
                "SELECT window_start, observed, expected, run_id FROM ops.alerts "
                "WHERE check_name = 'reconciliation'"
            )
        ).one()
    assert alert.window_start == runs[1].data_interval_start and alert.run_id == dr.run_id
    assert alert.expected == alert.observed + 1
    subjects = [m["Subject"] for m in sink.messages]
    assert any(s.startswith("[RRIEF] rrief_daily.reconcile failed for ") for s in subjects)
    assert any(h["task_id"] == "reconcile" and "RIS has" in h["text"] for h in hooks)


def test_plan_routes_batches_by_the_backend_read_when_it_runs(
    airflow_home: Path, pipeline_env: str, warehouse_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLM batches go to extract_llm (gpu queue, llm pool), rules batches to extract: decided by
    RRIEF_BACKEND when the plan tasks run, so the parsed DAG never depends on it."""
    from extractors.pipeline import tasks
    from extractors.pipeline.config import connector_from_settings
    from extractors.pipeline.fetch import fetch_window
    from extractors.settings import get_settings

    pg.truncate_warehouse(warehouse_engine)
    start = datetime(2025, 3, 3, 2, tzinfo=UTC)
    context = {"data_interval_start": start, "data_interval_end": start + timedelta(days=1)}
    connector = connector_from_settings(get_settings())
    fetch_window(connector, *context.values(), DEMO_PSEUDONYM_KEY, warehouse_engine)
    monkeypatch.setenv("RRIEF_BACKEND", "openai")
    llm = tasks.plan(context, llm=True)
    assert llm and tasks.plan(context, llm=False) == []
    monkeypatch.setenv("RRIEF_BACKEND", "rules")
    assert tasks.plan(context, llm=True) == [] and tasks.plan(context, llm=False) == llm


# --- SIGKILL inside a transaction: nothing half-written, the rerun completes --------------------
# A subprocess runs the DAG with dag.test(); a hook stalls it INSIDE the fetch (or extract)
# transaction, after the rows were written but before the commit, and the test kills it there.
STALL = """
import sys, time
from datetime import datetime
from pathlib import Path

marker, step, logical = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
import importlib
module = importlib.import_module(f"extractors.pipeline.{step}")  # fetch or extract
write_metrics = module.upsert_run_metrics  # the last write of the step's one transaction

def stall(conn, rows):
    write_metrics(conn, rows)
    marker.write_text(step)
    time.sleep(600)  # killed here, inside the open transaction

module.upsert_run_metrics = stall
from extractors.demo.airflow_home import load_dag
load_dag("rrief_daily").test(logical_date=logical, run_conf={"run_dbt": False})
"""


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("raw.reports", "raw.extractions", "raw.quarantine", "ops.run_metrics")
        }


def kill_inside(step: str, logical: datetime, engine: Engine, tmp_path: Path) -> dict[str, int]:
    """Run the DAG in a subprocess until it stalls inside ``step``'s transaction, look at the
    warehouse from outside, SIGKILL it; the counts seen inside (they must equal the ones after)."""
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / f"inside-{step}"
    proc = subprocess.Popen(
        [sys.executable, "-c", STALL, str(marker), step, logical.isoformat()],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
                pytest.fail(f"the DAG never reached the {step} transaction: {err}")
            time.sleep(0.2)
        seen = counts(engine)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("step", ["fetch", "extract"])
def test_sigkill_inside_a_transaction_leaves_nothing_half_written(
    dag: Any, pipeline_env: str, warehouse_engine: Engine, tmp_path: Path, step: str
) -> None:
    pg.truncate_warehouse(warehouse_engine)
    logical = logical_dates(DAY, 1)[1]  # the run over DAY 02:00 -> next day 02:00
    before = counts(warehouse_engine)
    inside = kill_inside(step, logical, warehouse_engine, tmp_path)
    after = counts(warehouse_engine)
    assert inside == after  # what the killed transaction wrote was never visible...
    if step == "fetch":
        assert after == before == dict.fromkeys(after, 0)  # ...and is gone: nothing committed
    else:
        assert after["raw.reports"] > 0  # fetch committed before the kill
        assert after["raw.extractions"] == after["raw.quarantine"] == 0

    run = run_ok(dag, logical, run_dbt=False)  # the rerun completes
    with warehouse_engine.connect() as conn:
        n_reports = conn.execute(
            text(
                "SELECT count(*) FROM raw.reports WHERE report_type IS NOT NULL "
                "AND report_final_at >= :start AND report_final_at < :end"
            ),
            {"start": run.data_interval_start, "end": run.data_interval_end},
        ).scalar_one()
        total = conn.execute(
            text(
                "SELECT n_in, n_loaded, n_quarantined, n_errored FROM ops.run_metrics "
                "WHERE run_id = :r AND task_id = 'summarize'"
            ),
            {"r": run.run_id},
        ).one()
        n_ext = conn.execute(text("SELECT count(*) FROM raw.extractions")).scalar_one()
        n_q = conn.execute(text("SELECT count(*) FROM raw.quarantine")).scalar_one()
    assert n_reports > 0
    assert total[0] == n_reports == total[1] + total[2] + total[3]  # counts add up
    assert n_ext + n_q == n_reports  # every report in exactly one place, none twice
