"""The pipeline steps on a real PostgreSQL: fetch (pseudonymize, UPSERT), plan, extract →
validate → load in one transaction, quarantine, metrics, failure records."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from extractors.demo.reports import DemoReport, generate_reports
from extractors.demo.ris import RIS_TABLE, ris_url, seed_ris
from extractors.pipeline.batches import plan_batches
from extractors.pipeline.context import RunContext, percentile
from extractors.pipeline.extract import extract_batch
from extractors.pipeline.failures import record_failure
from extractors.pipeline.fetch import fetch_window
from extractors.privacy import DEMO_PSEUDONYM_KEY
from extractors.ris.sql import SqlConnector
from extractors.settings import get_settings
from extractors.validate import ValidationPolicy
from tests import pg

DAY = date(2025, 3, 3)
START = datetime(2025, 3, 3, tzinfo=UTC)
END = START + timedelta(days=1)
CTX = RunContext(run_id="test-run", task_id="extract", map_index=0)


@pytest.fixture(scope="module")
def demo_reports() -> list[DemoReport]:
    return list(generate_reports(DAY, days=1, per_day=60, seed=3))


@pytest.fixture(scope="module")
def ris(tmp_path_factory: pytest.TempPathFactory, demo_reports: list[DemoReport]) -> SqlConnector:
    path = tmp_path_factory.mktemp("ris") / "ris.sqlite"
    seed_ris(path, demo_reports)
    return SqlConnector(ris_url(path), table_name=RIS_TABLE, source="test-ris")


@pytest.fixture
def loaded(empty_warehouse: Engine, ris: SqlConnector) -> Engine:
    fetch_window(ris, START, END, DEMO_PSEUDONYM_KEY, empty_warehouse)
    return empty_warehouse


def table_rows(engine: Engine, table: str, order: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))]


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def run_all_batches(engine: Engine, batch_size: int = 25, **kwargs) -> list:
    return [
        extract_batch(b, get_settings(), engine, CTX.model_copy(update={"map_index": i}), **kwargs)
        for i, b in enumerate(plan_batches(engine, START, END, batch_size))
    ]


def test_fetch_pseudonymizes_and_is_idempotent(
    empty_warehouse: Engine, ris: SqlConnector, demo_reports: list[DemoReport]
) -> None:
    ctx = RunContext(run_id="fetch-run", task_id="fetch")
    first = fetch_window(ris, START, END, DEMO_PSEUDONYM_KEY, empty_warehouse, ctx)
    assert first.n_fetched == len(demo_reports) == first.inserted
    assert first.n_record_errors == 0
    assert sum(first.by_report_type.values()) == len(demo_reports)
    before = table_rows(empty_warehouse, "raw.reports", "report_key")
    second = fetch_window(ris, START, END, DEMO_PSEUDONYM_KEY, empty_warehouse, ctx)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, len(demo_reports))
    assert table_rows(empty_warehouse, "raw.reports", "report_key") == before
    raw_ids = [r.patient_id for r in demo_reports] + [r.accession_number for r in demo_reports]
    assert pg.find_strings(empty_warehouse, raw_ids) == []
    metrics = table_rows(empty_warehouse, "ops.run_metrics", "task_id")
    assert len(metrics) == 1  # the rerun overwrote its own row


def test_fetch_counts_bad_ris_records_and_loads_the_rest(
    empty_warehouse: Engine, tmp_path: Path, demo_reports: list[DemoReport]
) -> None:
    path = tmp_path / "ris.sqlite"
    seed_ris(path, demo_reports[:10])
    engine = create_engine(ris_url(path))
    with engine.begin() as conn:  # a RIS row without report text
        conn.execute(text(f"UPDATE {RIS_TABLE} SET text = '' WHERE rowid = 3"))
    engine.dispose()
    summary = fetch_window(
        SqlConnector(ris_url(path), table_name=RIS_TABLE),
        START,
        END,
        DEMO_PSEUDONYM_KEY,
        empty_warehouse,
    )
    assert (summary.n_fetched, summary.n_record_errors) == (9, 1)
    assert "missing text" in summary.record_errors[0]
    assert count(empty_warehouse, "SELECT count(*) FROM raw.reports") == 9


def test_fetch_refuses_without_a_key(empty_warehouse: Engine, ris: SqlConnector) -> None:
    with pytest.raises(ValueError, match="RRIEF_PSEUDONYM_KEY"):
        fetch_window(ris, START, END, "", empty_warehouse)
    assert count(empty_warehouse, "SELECT count(*) FROM raw.reports") == 0


def test_plan_batches_cover_every_typed_report_without_text(loaded: Engine) -> None:
    batches = plan_batches(loaded, START, END, 7)
    typed = count(loaded, "SELECT count(*) FROM raw.reports WHERE report_type IS NOT NULL")
    assert sum(b.n_planned for b in batches) == typed
    assert all(b.n_planned <= 7 for b in batches)
    assert {b.report_type for b in batches} == {"cxr", "mammo", "ccta"}
    with loaded.connect() as conn:
        texts = conn.execute(text("SELECT report_text FROM raw.reports")).scalars().all()
    xcom = str([b.to_xcom() for b in batches])
    assert not any(t[:40] in xcom for t in texts)
    assert plan_batches(loaded, END, END + timedelta(days=1), 7) == []
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(loaded, START, END, 0)


def test_extract_loads_validates_and_records_metrics(loaded: Engine) -> None:
    summaries = run_all_batches(loaded)
    n_in = sum(s.n_in for s in summaries)
    assert n_in == count(loaded, "SELECT count(*) FROM raw.reports WHERE report_type IS NOT NULL")
    assert sum(s.n_loaded for s in summaries) == n_in  # realistic reports all pass
    assert count(loaded, "SELECT count(*) FROM raw.extractions WHERE status = 'ok'") == n_in
    assert count(loaded, "SELECT count(*) FROM ops.run_metrics") == len(summaries)
    assert count(loaded, "SELECT count(*) FROM ops.run_metrics WHERE latency_p95_ms > 0") == len(
        summaries
    )
    # extractions are of the stored text: evidence offsets point into raw.reports.report_text
    with loaded.connect() as conn:
        row = conn.execute(
            text(
                "SELECT r.report_text, e.evidence FROM raw.extractions e "
                "JOIN raw.reports r USING (report_key) WHERE e.schema_name = 'cxr' LIMIT 1"
            )
        ).one()
    for spans in row.evidence.values():
        for span in spans:
            assert row.report_text[span["start"] : span["end"]] == span["text"]
    before = table_rows(loaded, "raw.extractions", "extraction_id")
    run_all_batches(loaded)
    assert table_rows(loaded, "raw.extractions", "extraction_id") == before


def test_forced_validation_failure_goes_to_quarantine_and_nothing_is_lost(loaded: Engine) -> None:
    strict = ValidationPolicy(max_positive_rate=0.01, min_reports=1)
    summaries = run_all_batches(loaded, policy=strict)
    n_in = sum(s.n_in for s in summaries)
    n_q = sum(s.n_quarantined for s in summaries)
    assert n_q > 0
    assert n_in == sum(s.n_loaded + s.n_quarantined + s.n_errored for s in summaries)
    assert count(loaded, "SELECT count(*) FROM raw.quarantine") == n_q
    assert count(loaded, "SELECT count(*) FROM raw.extractions") + n_q == n_in
    with loaded.connect() as conn:
        failed = conn.execute(
            text("SELECT failed_expectations FROM raw.quarantine LIMIT 1")
        ).scalar_one()
    assert failed[0]["expectation"] == "expect_column_mean_to_be_between"
    assert "prevalence sanity limit" in failed[0]["reason"] and failed[0]["column"]
    rates = count(loaded, "SELECT count(*) FROM ops.run_metrics WHERE invalid_output_rate > 0")
    assert rates > 0
    # with the default policy the same reports pass and leave quarantine
    run_all_batches(loaded)
    assert count(loaded, "SELECT count(*) FROM raw.quarantine") == 0
    assert count(loaded, "SELECT count(*) FROM raw.extractions") == n_in


def test_extractor_errors_are_loaded_as_error_rows(
    loaded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRIEF_MAX_REPORT_CHARS", "600")  # longer reports become error results
    summaries = run_all_batches(loaded)
    n_err = sum(s.n_errored for s in summaries)
    assert 0 < n_err < sum(s.n_in for s in summaries)
    with loaded.connect() as conn:
        errors = (
            conn.execute(
                text("SELECT error FROM raw.extractions WHERE status = 'error' AND labels IS NULL")
            )
            .scalars()
            .all()
        )
    assert len(errors) == n_err and all("over the limit" in e for e in errors)


def test_a_failing_load_leaves_no_partial_rows(loaded: Engine) -> None:
    # a real database error after the extractions were written, inside the same transaction
    with loaded.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION ops.fail_metrics() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'metrics table unavailable'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER fail_metrics BEFORE INSERT ON ops.run_metrics "
                "FOR EACH ROW EXECUTE FUNCTION ops.fail_metrics()"
            )
        )
    try:
        with pytest.raises(DBAPIError, match="metrics table unavailable"):
            run_all_batches(loaded)
        assert count(loaded, "SELECT count(*) FROM raw.extractions") == 0
        assert count(loaded, "SELECT count(*) FROM raw.quarantine") == 0
    finally:
        with loaded.begin() as conn:
            conn.execute(text("DROP TRIGGER fail_metrics ON ops.run_metrics"))
            conn.execute(text("DROP FUNCTION ops.fail_metrics()"))


def test_record_failure_writes_a_row(empty_warehouse: Engine, warehouse_url: str) -> None:
    ti = SimpleNamespace(dag_id="rrief_daily", task_id="extract", map_index=2, try_number=3)
    context = {"ti": ti, "run_id": "run-x", "exception": RuntimeError("RIS unreachable")}
    record_failure(context, url=warehouse_url)
    rows = table_rows(empty_warehouse, "ops.task_failures", "failure_id")
    assert len(rows) == 1
    with empty_warehouse.connect() as conn:
        row = conn.execute(text("SELECT * FROM ops.task_failures")).mappings().one()
    assert (row["task_id"], row["map_index"], row["try_number"]) == ("extract", 2, 3)
    assert row["error"] == "RuntimeError: RIS unreachable"
    record_failure(context, url="postgresql+psycopg://nobody@127.0.0.1:1/none")  # never raises


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)


def test_connector_from_settings(tmp_path: Path) -> None:
    from extractors.pipeline.config import connector_from_settings
    from extractors.ris.fhir import FhirBundleConnector
    from extractors.ris.hl7v2 import Hl7FolderConnector
    from extractors.settings import Settings

    sql = connector_from_settings(
        Settings(ris_url=ris_url(tmp_path / "x.sqlite"), ris_source="site-a")
    )
    assert isinstance(sql, SqlConnector) and sql.source == "site-a"
    assert isinstance(
        connector_from_settings(Settings(ris_kind="hl7v2", ris_folder=str(tmp_path))),
        Hl7FolderConnector,
    )
    assert isinstance(
        connector_from_settings(Settings(ris_kind="fhir", ris_folder=str(tmp_path))),
        FhirBundleConnector,
    )
    with pytest.raises(ValueError, match="RRIEF_RIS_URL"):
        connector_from_settings(Settings(ris_kind="sql"))
    with pytest.raises(ValueError, match="RRIEF_RIS_FOLDER"):
        connector_from_settings(Settings(ris_kind="hl7v2"))


def test_llm_backends_take_the_report_types_own_adapter() -> None:
    from extractors.extract import BackendError
    from extractors.pipeline.extract import extractor_for
    from extractors.settings import Settings

    settings = Settings(backend="openai", adapter="cxr=cxr-v1", llm_endpoint="http://127.0.0.1:9")
    with pytest.raises(BackendError, match="no adapter configured for report type 'mammo'"):
        extractor_for("mammo", settings)
    rules = extractor_for("mammo", Settings(backend="rules", adapter="cxr=cxr-v1"))
    assert rules.backend == "rules"
