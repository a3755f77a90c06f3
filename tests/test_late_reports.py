"""Late reports on a real PostgreSQL: the look-back loads a report that reached the RIS after its
day was run and extracts it exactly once, the metrics never count a re-read day twice, and the
reconciliation alerts on a day whose RIS and warehouse counts differ."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, delete, text

from extractors.demo.reports import DemoReport, generate_reports
from extractors.demo.ris import RIS_TABLE, add_reports, report_feed, ris_url, seed_ris
from extractors.health.alerts import PipelineHealthError
from extractors.health.check import store_reconciliation
from extractors.pipeline.batches import plan_batches
from extractors.pipeline.context import RunContext
from extractors.pipeline.extract import extract_batch
from extractors.pipeline.fetch import fetch_window
from extractors.pipeline.reconcile import day_windows, reconcile, ris_count
from extractors.privacy import DEMO_PSEUDONYM_KEY
from extractors.ris.sql import SqlConnector
from extractors.settings import Settings

DAY1 = datetime(2025, 3, 3, 2, tzinfo=UTC)  # interval starts, as the 02:00 schedule gives
DAY2 = DAY1 + timedelta(days=1)
ONE_DAY = timedelta(days=1)


@pytest.fixture
def ris_file(tmp_path: Path) -> Path:
    path = tmp_path / "ris.sqlite"
    reports = list(generate_reports(date(2025, 3, 3), days=2, per_day=40, seed=21))
    seed_ris(path, reports)
    return path


@pytest.fixture
def ris(ris_file: Path) -> SqlConnector:
    return SqlConnector(ris_url(ris_file), table_name=RIS_TABLE, source="late-ris")


def add_late_report(ris_file: Path, final_at: datetime, accession: str = "LATE-0001") -> None:
    """A chest X-ray report finalized at ``final_at`` that reaches the RIS only now."""
    late = DemoReport(
        patient_id="P-LATE-1",
        accession_number=accession,
        modality="CR",
        procedure="XR CHEST 2 VIEWS",
        exam_at=final_at - timedelta(hours=1),
        report_final_at=final_at,
        report_type="cxr",
        text="FINDINGS: Small right pleural effusion. No pneumothorax.\nIMPRESSION: Effusion.",
        truth={},
    )
    add_reports(ris_file, [late])


def run_day(engine: Engine, ris: SqlConnector, start: datetime, run_id: str, lookback: int):
    """What one rrief_daily run does: fetch (with look-back), plan, extract every batch."""
    lookback_start = start - lookback * ONE_DAY
    ctx = RunContext(
        run_id=run_id, task_id="fetch", data_interval_start=start, data_interval_end=start + ONE_DAY
    )
    fetched = fetch_window(
        ris, start, start + ONE_DAY, DEMO_PSEUDONYM_KEY, engine, ctx, lookback_start
    )
    batches = plan_batches(engine, start, start + ONE_DAY, 25, lookback_start=lookback_start)
    summaries = [
        extract_batch(
            b, Settings(), engine, ctx.model_copy(update={"task_id": "extract", "map_index": i})
        )
        for i, b in enumerate(batches)
    ]
    return fetched, batches, summaries


def scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_sql_count_matches_what_fetch_yields(ris: SqlConnector) -> None:
    for lo, hi in day_windows(DAY2, 3):
        assert ris.count(lo, hi) == sum(1 for _ in ris.fetch(lo, hi))

    class FetchOnly:  # a connector without count(): reconciliation counts what fetch yields
        source = ris.source

        def fetch(self, start: datetime, end: datetime):
            return ris.fetch(start, end)

    assert ris_count(FetchOnly(), DAY1, DAY2) == ris.count(DAY1, DAY2) > 0


def test_a_late_report_is_loaded_by_the_look_back_and_extracted_once(
    empty_warehouse: Engine, ris: SqlConnector, ris_file: Path
) -> None:
    engine = empty_warehouse
    n_day1, n_day2 = ris.count(DAY1, DAY2), ris.count(DAY2, DAY2 + ONE_DAY)
    fetched, _, _ = run_day(engine, ris, DAY1, "run-day1", lookback=0)  # the first run ever
    assert fetched.n_fetched == n_day1 and fetched.lookback_reread == 0

    add_late_report(ris_file, DAY1 + timedelta(hours=5))  # belongs to day 1, arrives after it ran
    counts = reconcile(ris, engine, DAY1, days=1)
    assert [(c.ris, c.warehouse) for c in counts] == [(n_day1 + 1, n_day1)]
    with pytest.raises(PipelineHealthError, match=r"RIS has \d+ reports, the warehouse \d+"):
        store_reconciliation(engine, counts, run_id="run-day1")
    assert (
        scalar(engine, "SELECT count(*) FROM ops.alerts WHERE check_name = 'reconciliation'") == 1
    )

    fetched, batches, summaries = run_day(engine, ris, DAY2, "run-day2", lookback=1)
    assert fetched.n_fetched == n_day2
    assert (fetched.late, fetched.amended, fetched.lookback_reread) == (1, 0, n_day1 + 1)
    late = [b for b in batches if b.late]
    assert [(b.report_type, b.n_planned) for b in late] == [("cxr", 1)]  # only the late one
    assert late[0].start == DAY1 and late[0].end == DAY2

    # each report extracted (or quarantined) exactly once, the late one included
    n_all = n_day1 + 1 + n_day2
    typed = scalar(engine, "SELECT count(*) FROM raw.reports WHERE report_type IS NOT NULL")
    done = scalar(engine, "SELECT count(*) FROM raw.extractions") + scalar(
        engine, "SELECT count(*) FROM raw.quarantine"
    )
    assert scalar(engine, "SELECT count(*) FROM raw.reports") == n_all and done == typed
    # ops metrics: the fetch rows count each day once; extraction rows count each report once,
    # all carrying their run's interval (the late report is day 2's run's work)
    fetch_rows = scalar(engine, "SELECT sum(n_in) FROM ops.run_metrics WHERE task_id = 'fetch'")
    assert fetch_rows == n_day1 + n_day2
    assert (
        scalar(engine, "SELECT sum(n_in) FROM ops.run_metrics WHERE task_id = 'extract'") == typed
    )
    assert sum(s.n_in for s in summaries) == sum(b.n_planned for b in batches)
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM ops.run_metrics WHERE run_id = 'run-day2' "
            "AND data_interval_start <> :start",
            start=DAY2,
        )
        == 0
    )

    # the day now reconciles, and its stale alert is replaced
    counts = reconcile(ris, engine, DAY2, days=2)
    assert [c.difference for c in counts] == [0, 0]
    assert store_reconciliation(engine, counts, run_id="run-day2") == []
    assert (
        scalar(engine, "SELECT count(*) FROM ops.alerts WHERE check_name = 'reconciliation'") == 0
    )

    # rerunning day 2 re-extracts day 2 but not the late report again: nothing double-counted
    _, batches, _ = run_day(engine, ris, DAY2, "run-day2", lookback=1)
    assert not [b for b in batches if b.late]
    assert (
        scalar(engine, "SELECT sum(n_in) FROM ops.run_metrics WHERE task_id = 'extract'") == typed
    )


def test_reconciliation_sees_what_the_look_back_cannot(
    empty_warehouse: Engine, ris: SqlConnector, ris_file: Path
) -> None:
    engine = empty_warehouse
    run_day(engine, ris, DAY1, "run-day1", lookback=0)
    run_day(engine, ris, DAY2, "run-day2", lookback=0)
    add_late_report(ris_file, DAY1 + timedelta(hours=3))  # later than a zero-day look-back
    rf = create_engine(ris_url(ris_file))
    try:  # and one report of day 2 disappears from the RIS (deleted or moved)
        with rf.begin() as conn:
            gone = conn.execute(
                text(
                    "SELECT accession_number FROM report_feed WHERE julianday(report_final_at) "
                    ">= julianday(:lo) ORDER BY report_final_at LIMIT 1"
                ),
                {"lo": DAY2.replace(tzinfo=None).isoformat(sep=" ")},
            ).scalar_one()
            conn.execute(delete(report_feed).where(report_feed.c.accession_number == gone))
    finally:
        rf.dispose()
    counts = reconcile(ris, engine, DAY2, days=7)  # days before the first run are not checked
    assert [(c.window_start, c.difference) for c in counts] == [(DAY1, 1), (DAY2, -1)]
    with pytest.raises(PipelineHealthError) as raised:
        store_reconciliation(engine, counts, run_id="run-day2", dag_id="rrief_daily")
    message = str(raised.value)
    assert "for the days 2025-03-03 to 2025-03-04" in message
    assert "RRIEF_FETCH_LOOKBACK_DAYS" in message and "no longer lists" in message
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT window_start, subject, observed, expected FROM ops.alerts "
                "WHERE check_name = 'reconciliation' ORDER BY window_start"
            )
        ).all()
    assert [(r.window_start, r.subject) for r in stored] == [(DAY1, "late-ris"), (DAY2, "late-ris")]
    assert stored[0].expected == stored[0].observed + 1  # RIS one more than the warehouse
