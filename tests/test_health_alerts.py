"""The daily health check on a real warehouse: a label shift and a burst of invalid outputs
write ``ops.alerts`` rows and raise ``PipelineHealthError``; a rerun replaces rather than
duplicates; a normal day passes; the alert migrations match the models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, create_engine, select, text

from extractors.health import PipelineHealthError, check_from_context, run_health_check
from extractors.health.queries import label_counts, metrics_groups
from extractors.health.thresholds import HealthThresholds
from extractors.warehouse import migrate, models
from tests import pg
from tests.health_data import fill_month, window_start


def stored_alerts(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(models.alerts).order_by(models.alerts.c.check_name, models.alerts.c.subject)
        )
        return [dict(r._mapping) for r in rows]


def test_forced_failure_writes_alert_rows_and_fails_the_task(empty_warehouse: Engine) -> None:
    days = fill_month(empty_warehouse, last_effusion=0.45, last_quarantined=8, last_errored=4)
    last = days[-1]
    with pytest.raises(PipelineHealthError) as info:
        run_health_check(
            empty_warehouse, window_start(last), run_id="scheduled__x", dag_id="rrief_daily"
        )
    message = str(info.value)
    assert f"for the day starting {last.isoformat()}" in message
    assert "label drift in cxr 'Pleural Effusion'" in message
    assert "invalid-output rate of cxr:rules is 12.0%" in message
    assert "RIS feed or a report template changed" in message

    rows = stored_alerts(empty_warehouse)
    assert [(r["check_name"], r["subject"]) for r in rows] == [
        ("drift", "cxr:Pleural Effusion"),
        ("invalid_output_rate", "cxr:rules"),
    ]
    drift, rate = rows
    # 45 of the 88 valid reports vs 15% over 28 days of 99 valid reports a day
    assert drift["n"] == 88 and drift["n_baseline"] == 28 * 99
    moved = {v["value"]: (v["x_today"], v["x_baseline"]) for v in drift["details"]["values"]}
    assert moved == {"positive": (45, 28 * 15), "negative": (43, 28 * 84)}
    # headline: the largest change (here a tie: positive and negative move by the same amount)
    assert abs(drift["observed"] - drift["expected"]) == pytest.approx(45 / 88 - 15 / 99)
    assert drift["q_value"] < 0.01
    assert rate["observed"] == pytest.approx(0.12) and rate["threshold"] == 0.05
    assert rate["n"] == 100 and rate["details"] == {"n_quarantined": 8, "n_errored": 4}
    assert all(r["window_start"] == window_start(last) for r in rows)
    assert all(r["run_id"] == "scheduled__x" and r["dag_id"] == "rrief_daily" for r in rows)
    assert all(r["window_end"] - r["window_start"] == timedelta(days=1) for r in rows)

    # a rerun of the check replaces the day's alerts instead of adding to them
    with pytest.raises(PipelineHealthError):
        run_health_check(empty_warehouse, window_start(last), run_id="manual__y")
    again = stored_alerts(empty_warehouse)
    assert len(again) == 2 and {r["run_id"] for r in again} == {"manual__y"}

    # raised thresholds: the same day passes, and its stored alerts are cleared
    report = run_health_check(
        empty_warehouse,
        window_start(last),
        thresholds=HealthThresholds(drift_min_effect=0.5, alert_invalid_rate=0.2),
    )
    assert report.alerts == [] and report.drift_tests > 0
    assert stored_alerts(empty_warehouse) == []


def test_a_normal_day_passes_and_small_days_are_reported_as_skipped(
    empty_warehouse: Engine,
) -> None:
    days = fill_month(empty_warehouse)
    report = run_health_check(empty_warehouse, window_start(days[-1]))
    assert report.alerts == [] and stored_alerts(empty_warehouse) == []
    assert report.reports_by_schema == {"cxr": 99}
    # 12 findings always not_mentioned, two values for Support Devices and Pleural Effusion
    assert report.drift_tests == 16
    assert report.skipped == []
    # the first day has no baseline: skipped, with the reason
    early = run_health_check(empty_warehouse, window_start(days[3]))
    assert early.alerts == []
    assert early.skipped == [
        "drift cxr: 3 baseline days with reports, fewer than drift_min_baseline_days=7"
    ]


def test_check_from_airflow_context(empty_warehouse: Engine) -> None:
    days = fill_month(empty_warehouse, last_quarantined=20)
    context = {
        "data_interval_start": window_start(days[-1]),
        "run_id": "scheduled__2025-03-29",
        "ti": SimpleNamespace(dag_id="rrief_daily", task_id="check_health"),
    }
    with pytest.raises(PipelineHealthError, match=r"invalid-output rate of cxr:rules is 20\.0%"):
        check_from_context(context, engine=empty_warehouse)
    assert [r["check_name"] for r in stored_alerts(empty_warehouse)] == ["invalid_output_rate"]
    with pytest.raises(ValueError, match="data_interval_start"):
        check_from_context({"run_id": "x"}, engine=empty_warehouse)


def test_volume_collapse_alerts(empty_warehouse: Engine) -> None:
    days = fill_month(empty_warehouse, days=29)
    # the RIS feed broke: the next day brings 5 reports where there are usually 100
    (day,) = fill_month(empty_warehouse, start_day=days[-1] + timedelta(days=1), days=1, per_day=5)
    with pytest.raises(PipelineHealthError) as info:
        run_health_check(empty_warehouse, window_start(day))
    (alert,) = info.value.alerts
    assert alert.check_name == "volume" and alert.n == 5 and alert.expected == 100
    assert "cxr volume is 5 reports, below 20.0% of the weekday median 100" in str(info.value)
    report = run_health_check(empty_warehouse, window_start(day), raise_on_alert=False)
    assert "drift cxr: 4 reports today, fewer than drift_min_daily_n=30" in report.skipped
    assert "invalid-output rate cxr:rules: 5 reports, fewer than drift_min_daily_n=30" in (
        report.skipped
    )


def test_queries_take_only_the_newest_run_of_a_day(empty_warehouse: Engine) -> None:
    days = fill_month(empty_warehouse, days=2)
    # a manual rerun of day 2 with different totals: only it counts
    with empty_warehouse.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ops.run_metrics (run_id, dag_id, task_id, map_index, "
                "data_interval_start, schema_name, backend, n_in, n_loaded, n_quarantined, "
                "n_errored, invalid_output_rate, latency_p50_ms, latency_p95_ms, recorded_at) "
                "VALUES ('manual__1', 'rrief_daily', 'extract', 0, :start, 'cxr', 'rules', 100, "
                "97, 3, 0, 0.03, 4.0, 9.0, now() + interval '1 hour')"
            ),
            {"start": window_start(days[1])},
        )
    groups = metrics_groups(empty_warehouse, window_start(days[0]), 2)
    assert [(g.day, g.run_id, g.n_in, g.n_quarantined) for g in groups] == [
        (days[0], f"scheduled__{days[0]}", 100, 1),
        (days[1], "manual__1", 100, 3),
    ]
    # latency: report-weighted mean of batch p50s, worst batch p95
    assert groups[0].latency_p50_ms == pytest.approx(2.5) and groups[0].latency_p95_ms == 6.0
    counts = label_counts(empty_warehouse, window_start(days[0]), 2)
    assert counts[days[0]]["cxr"].n == 99
    assert counts[days[0]]["cxr"].counts["Pleural Effusion"] == {"positive": 15, "negative": 84}
    assert counts[days[0]]["cxr"].counts["Support Devices"] == {
        "positive": 25,
        "not_mentioned": 74,
    }


@pytest.fixture
def pg_url_fresh() -> Iterator[str]:
    with pg.throwaway_database() as url:
        yield url


def conn_has_alerts(engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass('ops.alerts')")).scalar_one() is not None


def _table_of(obj: object, type_: str) -> tuple[str | None, str] | None:
    """(schema, table) a schema object belongs to, for Alembic's include_object."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return None if table is None else (table.schema, table.name)  # type: ignore[attr-defined]


def test_alerts_migration_matches_the_models(pg_url_fresh: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(pg_url_fresh)
    try:
        assert migrate.upgrade(engine) == migrate.head_revision()
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "version_table_schema": "ops",
                    "include_name": lambda name, type_, _: (
                        type_ != "schema" or name in ("raw", "ops")
                    ),
                    # only ops.alerts is compared here (test_warehouse compares everything)
                    "include_object": lambda obj, name, type_, *_: (
                        _table_of(obj, type_) in (None, ("ops", "alerts"))
                    ),
                },
            )
            assert compare_metadata(ctx, models.metadata) == []
        migrate.downgrade(
            engine, "0004_report_provenance"
        )  # 0005: validation index, reconciliation
        with engine.connect() as conn:
            regclass = "SELECT to_regclass('ops.validation_results')"
            assert conn.execute(text(regclass)).scalar_one() is None
            check = conn.execute(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'ops.alerts'::regclass AND contype = 'c'"
                )
            ).scalar_one()
            assert "volume" in check and "reconciliation" not in check
        migrate.downgrade(engine, "0001_initial")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('ops.alerts')")).scalar_one() is None
        assert migrate.upgrade(engine) == migrate.head_revision()
        assert conn_has_alerts(engine)
    finally:
        engine.dispose()
