"""The warehouse on a real PostgreSQL: migrations, idempotent UPSERTs, all-or-nothing loads,
roles (the researcher is denied the raw layer), pseudonymization, the embedded server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from extractors.privacy import DEMO_PSEUDONYM_KEY, Pseudonymizer, pseudonymize_record
from extractors.ris.base import ReportRecord
from extractors.warehouse import load, migrate, models, roles
from extractors.warehouse.rows import (
    ExtractionRow,
    FailedExpectation,
    QuarantineRow,
    ReportRow,
    RunMetricsRow,
    TaskFailureRow,
)
from tests import pg

HEAD = "0007_adapter_registry"  # the newest migration

T0 = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
PSEUDO = Pseudonymizer(DEMO_PSEUDONYM_KEY)


def record(i: int, text_: str | None = None) -> ReportRecord:
    return ReportRecord(
        source="ris-test",
        patient_id=f"PAT{100000 + i % 7}",
        accession_number=f"ACC{900000 + i}",
        modality="CR",
        procedure="XR CHEST PA AND LATERAL",
        exam_at=T0 + timedelta(minutes=i),
        report_final_at=T0 + timedelta(minutes=i, seconds=30),
        text=text_ or f"FINDINGS: No pleural effusion. Study {i}.\nIMPRESSION: Normal chest.",
    )


def report_rows(n: int, start: int = 0) -> list[ReportRow]:
    return [pseudonymize_record(record(i), PSEUDO) for i in range(start, start + n)]


def extraction_row(report: ReportRow, **over: Any) -> ExtractionRow:
    fields: dict[str, Any] = {
        "report_key": report.report_key,
        "schema_name": "cxr",
        "schema_version": 1,
        "backend": "rules",
        "extractor_version": "rules-1",
        "status": "ok",
        "labels": {"Pleural Effusion": "negative"},
        "evidence": {
            "Pleural Effusion": [{"text": "No pleural effusion.", "start": 10, "end": 30}]
        },
        "content_sha256": report.content_sha256,
        "run_id": "run-1",
    }
    fields.update(over)
    return ExtractionRow(**fields)


def quarantine_row(report: ReportRow, **over: Any) -> QuarantineRow:
    fields: dict[str, Any] = {
        "report_key": report.report_key,
        "schema_name": "cxr",
        "schema_version": 1,
        "extractor_version": "rules-1",
        "labels": {"Pleural Effusion": "maybe"},
        "evidence": {},
        "failed_expectations": [
            FailedExpectation(
                expectation="expect_column_values_to_be_in_set",
                column="Pleural Effusion",
                reason="'maybe' not in the schema's values",
            )
        ],
        "run_id": "run-1",
    }
    fields.update(over)
    return QuarantineRow(**fields)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every warehouse table, in key order (timestamps included)."""
    out = {}
    with engine.connect() as conn:
        for table in models.WAREHOUSE_TABLES:
            order = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
    return out


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


# --- migrations ---------------------------------------------------------------------------


def test_migrations_create_the_contract_tables_and_match_the_models(pg_url_fresh: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(pg_url_fresh)
    try:
        assert migrate.current_revision(engine) is None
        assert migrate.upgrade(engine) == migrate.head_revision() == HEAD
        assert migrate.upgrade(engine) == HEAD  # second run: nothing to do
        with engine.connect() as conn:
            tables = set(
                conn.execute(
                    text(
                        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                        "WHERE table_schema IN ('raw', 'ops', 'annotation', 'public')"
                    )
                ).scalars()
            )
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "version_table_schema": "ops",
                    "include_name": lambda name, type_, _: (
                        type_ != "schema" or name in ("raw", "ops", "annotation")
                    ),
                },
            )
            diff = compare_metadata(ctx, models.metadata)
        assert tables == {
            "raw.reports",
            "raw.extractions",
            "raw.quarantine",
            "ops.run_metrics",
            "ops.task_failures",
            "ops.alerts",
            "ops.validation_results",
            "ops.adapters",
            "ops.alembic_version",
            "annotation.annotators",
            "annotation.tasks",
            "annotation.labels",
            "annotation.task_reports",  # a view: report text is read, never copied
        }
        assert diff == [], f"models.py and the migrations disagree: {diff}"
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        assert migrate.upgrade(engine) == HEAD
    finally:
        engine.dispose()


@pytest.fixture
def pg_url_fresh() -> Iterator[str]:
    with pg.throwaway_database() as url:
        yield url


# --- reports ------------------------------------------------------------------------------


def test_report_upsert_is_idempotent_and_updates_changed_text(empty_warehouse: Engine) -> None:
    rows = report_rows(30)
    first = load.upsert_reports(empty_warehouse, rows, chunk_size=7)
    assert (first.inserted, first.updated, first.unchanged) == (30, 0, 0)
    before = snapshot(empty_warehouse)

    again = load.upsert_reports(empty_warehouse, rows, chunk_size=7)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 30)
    assert snapshot(empty_warehouse) == before  # not even updated_at moved

    changed = pseudonymize_record(record(3, "FINDINGS: Small left pleural effusion."), PSEUDO)
    assert changed.report_key == rows[3].report_key
    result = load.upsert_reports(empty_warehouse, [*rows[:5], changed])
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 4)
    with empty_warehouse.connect() as conn:
        row = conn.execute(
            select(models.reports).where(models.reports.c.report_key == changed.report_key)
        ).one()
    assert row.report_text == changed.report_text
    assert row.content_sha256 == changed.content_sha256 != rows[3].content_sha256
    assert row.updated_at > row.ingested_at
    assert count(empty_warehouse, "raw.reports") == 30


def test_result_status_and_provenance_are_stored_and_a_final_version_updates(
    empty_warehouse: Engine,
) -> None:
    prelim = record(1).model_copy(
        update={
            "result_status": "preliminary",
            "time_source": "OBX-14",
            "exam_precision": "month",
            "id_source": "OBR-3",
            "flags": ("invalid_bytes_replaced",),
        }
    )
    row = pseudonymize_record(prelim, PSEUDO)
    assert row.provenance == {
        "time_source": "OBX-14",
        "exam_precision": "month",
        "id_source": "OBR-3",
        "flags": ["invalid_bytes_replaced"],
    }
    assert "PAT" not in str(row.provenance) and "ACC" not in str(row.provenance)
    assert load.upsert_reports(empty_warehouse, [row]).inserted == 1
    final = pseudonymize_record(
        prelim.model_copy(update={"result_status": "final", "time_source": "OBR-22"}), PSEUDO
    )
    assert load.upsert_reports(empty_warehouse, [final]).updated == 1  # same text, new status
    with empty_warehouse.connect() as conn:
        stored = conn.execute(
            select(models.reports.c.result_status, models.reports.c.provenance)
        ).one()
    assert stored.result_status == "final"
    assert stored.provenance["time_source"] == "OBR-22"
    with (
        pytest.raises(IntegrityError, match="ck_reports_result_status"),
        empty_warehouse.begin() as conn,
    ):
        conn.execute(text("UPDATE raw.reports SET result_status = 'draft'"))


def test_duplicate_keys_in_one_load_keep_the_last_version(empty_warehouse: Engine) -> None:
    old = pseudonymize_record(record(1, "FINDINGS: preliminary wording."), PSEUDO)
    new = pseudonymize_record(record(1, "FINDINGS: final wording."), PSEUDO)
    counts = load.upsert_reports(empty_warehouse, [old, new])
    assert counts.inserted == 1
    with empty_warehouse.connect() as conn:
        texts = conn.execute(select(models.reports.c.report_text)).scalars().all()
    assert texts == ["FINDINGS: final wording."]


def test_loaders_refuse_anything_but_their_row_model(empty_warehouse: Engine) -> None:
    raw = record(1).model_dump()
    with pytest.raises(TypeError, match="ReportRow"):
        load.upsert_reports(empty_warehouse, [raw])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="report_key"):
        ReportRow(**{**report_rows(1)[0].model_dump(), "report_key": "ACC900001"})
    assert count(empty_warehouse, "raw.reports") == 0


# --- extractions and quarantine -------------------------------------------------------------


def test_extraction_upsert_is_idempotent_and_moves_between_quarantine(
    empty_warehouse: Engine,
) -> None:
    reps = report_rows(4)
    load.upsert_reports(empty_warehouse, reps)
    ok = [extraction_row(r) for r in reps[:3]]
    assert load.upsert_extractions(empty_warehouse, ok).inserted == 3
    q = load.upsert_quarantine(empty_warehouse, [quarantine_row(reps[3])])
    assert q.inserted == 1
    before = snapshot(empty_warehouse)
    assert load.upsert_extractions(empty_warehouse, ok).unchanged == 3
    assert load.upsert_quarantine(empty_warehouse, [quarantine_row(reps[3])]).unchanged == 1
    # a rerun with another run id and identical output changes nothing, run_id included
    rerun = [extraction_row(r, run_id="run-2") for r in reps[:3]]
    assert load.upsert_extractions(empty_warehouse, rerun).unchanged == 3
    assert snapshot(empty_warehouse) == before

    # new output for the same key replaces the old one
    fixed = extraction_row(reps[0], labels={"Pleural Effusion": "positive"}, run_id="run-3")
    assert load.upsert_extractions(empty_warehouse, [fixed]).updated == 1
    with empty_warehouse.connect() as conn:
        labels, run_id = conn.execute(
            select(models.extractions.c.labels, models.extractions.c.run_id).where(
                models.extractions.c.report_key == reps[0].report_key
            )
        ).one()
    assert labels == {"Pleural Effusion": "positive"} and run_id == "run-3"

    # the quarantined result, once valid, leaves quarantine; a loaded one can go the other way
    load.upsert_extractions(empty_warehouse, [extraction_row(reps[3])])
    load.upsert_quarantine(empty_warehouse, [quarantine_row(reps[1])])
    with empty_warehouse.connect() as conn:
        loaded = set(conn.execute(select(models.extractions.c.report_key)).scalars())
        held = set(conn.execute(select(models.quarantine.c.report_key)).scalars())
        reasons = conn.execute(select(models.quarantine.c.failed_expectations)).scalar_one()
    assert loaded == {reps[0].report_key, reps[2].report_key, reps[3].report_key}
    assert held == {reps[1].report_key}
    assert reasons[0]["expectation"] == "expect_column_values_to_be_in_set"
    assert reasons[0]["column"] == "Pleural Effusion"


def test_error_results_load_with_their_message(empty_warehouse: Engine) -> None:
    from extractors.results import ExtractionResult, ExtractorInfo

    rep = report_rows(1)[0]
    result = ExtractionResult(
        report_id=rep.report_key,
        schema_name="cxr",
        schema_version=1,
        extractor=ExtractorInfo(backend="hf", version="adapter-abc"),
        status="error",
        error="model output is not valid JSON",
    )
    load.upsert_reports(empty_warehouse, [rep])
    row = ExtractionRow.from_result(
        result, content_sha256=rep.content_sha256, run_id="r", adapter_id="cxr-lora-v1"
    )
    load.upsert_extractions(empty_warehouse, [row])
    with empty_warehouse.connect() as conn:
        got = conn.execute(select(models.extractions)).one()
        sql_null = conn.execute(text("SELECT labels IS NULL FROM raw.extractions")).scalar()
    assert sql_null is True  # SQL NULL, not the JSON value null: dbt/GE test "is null"
    assert (got.status, got.labels, got.evidence, got.error, got.adapter_id) == (
        "error",
        None,
        {},
        "model output is not valid JSON",
        "cxr-lora-v1",
    )


# --- all or nothing -----------------------------------------------------------------------


def test_a_failure_mid_load_leaves_nothing(empty_warehouse: Engine) -> None:
    rows = report_rows(25)

    def rows_then_crash() -> Iterator[ReportRow]:
        yield from rows[:20]  # two chunks of 8 are written before the crash
        raise RuntimeError("worker killed mid-load")

    with pytest.raises(RuntimeError, match="mid-load"):
        load.upsert_reports(empty_warehouse, rows_then_crash(), chunk_size=8)
    assert count(empty_warehouse, "raw.reports") == 0

    # a database error in a later chunk (extraction of an unknown report) undoes earlier chunks
    load.upsert_reports(empty_warehouse, rows)
    orphan = extraction_row(report_rows(1, start=999)[0])
    batch = [extraction_row(r) for r in rows] + [orphan]
    with pytest.raises(IntegrityError, match="fk_extractions_report_key"):
        load.upsert_extractions(empty_warehouse, batch, chunk_size=10)
    assert count(empty_warehouse, "raw.extractions") == 0


def test_one_caller_transaction_spans_several_loaders(empty_warehouse: Engine) -> None:
    reps = report_rows(3)
    load.upsert_reports(empty_warehouse, reps)
    metrics = RunMetricsRow(run_id="run-1", task_id="extract", map_index=0, n_in=3, n_loaded=2)
    with pytest.raises(RuntimeError), empty_warehouse.begin() as conn:
        load.upsert_extractions(conn, [extraction_row(r) for r in reps[:2]])
        load.upsert_quarantine(conn, [quarantine_row(reps[2])])
        load.upsert_run_metrics(conn, [metrics])
        raise RuntimeError("killed before commit")
    for table in ("raw.extractions", "raw.quarantine", "ops.run_metrics"):
        assert count(empty_warehouse, table) == 0, table

    with empty_warehouse.begin() as conn:
        load.upsert_extractions(conn, [extraction_row(r) for r in reps[:2]])
        load.upsert_quarantine(conn, [quarantine_row(reps[2])])
        load.upsert_run_metrics(conn, [metrics])
    assert [count(empty_warehouse, t) for t in ("raw.extractions", "raw.quarantine")] == [2, 1]


def test_run_metrics_upsert_and_failures_append(empty_warehouse: Engine) -> None:
    start = T0.replace(hour=0, minute=0)
    m = RunMetricsRow(
        run_id="scheduled__2025-03-04",
        dag_id="rrief_daily",
        task_id="extract",
        map_index=2,
        data_interval_start=start,
        data_interval_end=start + timedelta(days=1),
        schema_name="cxr",
        backend="rules",
        n_in=10,
        n_loaded=8,
        n_quarantined=1,
        n_errored=1,
        invalid_output_rate=0.1,
        latency_p50_ms=1.5,
        latency_p95_ms=4.0,
    )
    assert load.upsert_run_metrics(empty_warehouse, [m]).inserted == 1
    assert load.upsert_run_metrics(empty_warehouse, [m]).unchanged == 1
    retried = m.model_copy(update={"n_loaded": 9, "n_errored": 0, "invalid_output_rate": 0.0})
    assert load.upsert_run_metrics(empty_warehouse, [retried]).updated == 1
    failure = TaskFailureRow(dag_id="rrief_daily", task_id="extract", try_number=1, error="boom")
    assert load.insert_task_failures(empty_warehouse, [failure, failure]) == 2
    assert count(empty_warehouse, "ops.run_metrics") == 1
    assert count(empty_warehouse, "ops.task_failures") == 2


# --- privacy ------------------------------------------------------------------------------


def test_no_raw_identifier_reaches_any_table(empty_warehouse: Engine) -> None:
    recs = [record(i) for i in range(5)]
    # a dictated report that repeats its own ids and another MRN
    recs.append(
        record(
            5,
            f"Accession {record(5).accession_number}. Patient {record(5).patient_id}, "
            "MRN: 55512345.\nFINDINGS: Right pleural effusion.",
        )
    )
    reps = [pseudonymize_record(r, PSEUDO) for r in recs]
    load.upsert_reports(empty_warehouse, reps)
    load.upsert_extractions(empty_warehouse, [extraction_row(r) for r in reps])
    raw_ids = {r.patient_id for r in recs} | {r.accession_number for r in recs} | {"55512345"}
    assert pg.find_strings(empty_warehouse, raw_ids) == []
    # the scan does find what is there (guards against a scan that checks nothing)
    assert pg.find_strings(empty_warehouse, ["Right pleural effusion"]) == [
        ("raw.reports.report_text", "Right pleural effusion")
    ]


# --- roles --------------------------------------------------------------------------------


def test_researcher_reads_marts_only(empty_warehouse: Engine) -> None:
    load.upsert_reports(empty_warehouse, report_rows(2))
    roles.ensure_roles(empty_warehouse)  # idempotent: already applied by the fixture
    with empty_warehouse.begin() as conn:  # as the owner (dbt's user), after the grants
        conn.execute(text("DROP TABLE IF EXISTS marts.cohort_demo"))
        conn.execute(text("CREATE TABLE marts.cohort_demo AS SELECT 1 AS n"))
        conn.execute(text("DROP VIEW IF EXISTS staging.stg_demo"))
        conn.execute(text("CREATE VIEW staging.stg_demo AS SELECT report_text FROM raw.reports"))

    def as_researcher(sql: str) -> Any:
        with empty_warehouse.connect() as conn:
            conn.execute(text("SET LOCAL ROLE researcher"))  # undone by the rollback
            try:
                return conn.execute(text(sql)).scalar()
            finally:
                conn.rollback()

    assert as_researcher("SELECT n FROM marts.cohort_demo") == 1
    for sql in (
        "SELECT count(*) FROM raw.reports",
        "SELECT report_text FROM raw.reports LIMIT 1",
        "SELECT count(*) FROM raw.extractions",
        "SELECT count(*) FROM ops.run_metrics",
        "SELECT count(*) FROM staging.stg_demo",
        "CREATE TABLE marts.mine (n int)",
    ):
        with pytest.raises(ProgrammingError, match="permission denied"):
            as_researcher(sql)


def test_loader_writes_raw_and_builds_marts(empty_warehouse: Engine) -> None:
    rep = report_rows(1)[0]
    with empty_warehouse.connect() as conn:
        try:
            conn.execute(text("SET ROLE rrief_loader"))
            load.upsert_reports(conn, [rep])
            conn.execute(text("DROP TABLE IF EXISTS marts.loader_made"))
            conn.execute(text("CREATE TABLE marts.loader_made AS SELECT 2 AS n"))
            conn.commit()
            conn.execute(text("SET LOCAL ROLE researcher"))
            assert conn.execute(text("SELECT n FROM marts.loader_made")).scalar() == 2
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text("SELECT count(*) FROM raw.reports"))
        finally:
            conn.rollback()
            conn.execute(text("RESET ROLE"))
            conn.commit()
    assert count(empty_warehouse, "raw.reports") == 1


def test_role_passwords_are_quoted(empty_warehouse: Engine) -> None:
    name = f"rrief_tmp_{os.getpid()}"
    try:
        with empty_warehouse.begin() as conn:
            roles._create_role(conn, name, "it's 50% :secret")
        with empty_warehouse.connect() as conn:
            can_login = conn.execute(
                text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :n"), {"n": name}
            ).scalar()
        assert can_login is True
    finally:
        with empty_warehouse.begin() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))


# --- embedded server ----------------------------------------------------------------------


@pytest.mark.slow  # initdb: 1 s idle, up to ~10 s on a busy 2-core machine
def test_embedded_server_hosts_the_warehouse(tmp_path: Any) -> None:
    from extractors.warehouse.embedded import start_embedded, stop_embedded

    pgdata = tmp_path / "pgdata"
    url = start_embedded(pgdata, database="rrief_demo", cleanup_mode="delete")
    try:
        assert "rrief_demo" in url
        engine = create_engine(url)
        try:
            migrate.upgrade(engine)
            assert load.upsert_reports(engine, report_rows(3)).inserted == 3
        finally:
            engine.dispose()
        # a second start in the same process reuses the running server
        assert start_embedded(pgdata, database="rrief_demo", cleanup_mode="delete") == url
    finally:
        stop_embedded(pgdata)
    assert not pgdata.exists()
