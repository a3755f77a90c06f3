"""The dbt health marts on a real warehouse: ``pipeline_health_daily`` and
``label_prevalence_daily`` build, pass their data tests and agree with the health check's own
queries (one definition of a day's volumes, rates and label shares)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from extractors.health.queries import label_counts, metrics_groups
from extractors.pipeline.dbt import run_dbt
from extractors.settings import get_settings
from tests.health_data import fill_month, window_start

SETTINGS = get_settings()

DBT_BIN = Path(__file__).resolve().parents[1] / get_settings().dbt_bin


@pytest.mark.slow
def test_health_marts_build_and_agree_with_the_check(
    empty_warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    if not DBT_BIN.exists():
        pytest.skip(f"dbt not installed at {DBT_BIN} (see extractors/pipeline/dbt.py)")
    days = fill_month(empty_warehouse, days=10, last_quarantined=6, last_errored=2)
    with empty_warehouse.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ops.alerts (window_start, window_end, check_name, schema_name, "
                "subject, message) VALUES (:s, :s + interval '1 day', 'invalid_output_rate', "
                "'cxr', 'cxr:rules', 'synthetic alert')"
            ),
            {"s": window_start(days[-1])},
        )
    result = run_dbt(
        ("build", "--select", "+pipeline_health_daily", "+label_prevalence_daily"),
        url=warehouse_url,
        settings=SETTINGS,
        target_path=tmp_path / "target",
    )
    assert "ERROR=0" in result.output_tail and "WARN=0" in result.output_tail

    with empty_warehouse.connect() as conn:
        health = conn.execute(
            text(
                "SELECT day, schema_name, backend, n_batches, n_fetched, n_in, n_quarantined, "
                "n_errored, invalid_output_rate, latency_p50_ms, latency_p95_ms, n_alerts_day "
                "FROM marts.pipeline_health_daily ORDER BY day"
            )
        ).all()
        prevalence = conn.execute(
            text(
                "SELECT day, label_path, label_value, n_with_value, n_reports, share "
                "FROM marts.label_prevalence_daily WHERE schema_name = 'cxr'"
            )
        ).all()
    groups = {g.day: g for g in metrics_groups(empty_warehouse, window_start(days[0]), 10)}
    assert [r.day for r in health] == days
    for r in health:
        g = groups[r.day]
        assert (r.n_in, r.n_quarantined, r.n_errored, r.n_batches) == (
            g.n_in,
            g.n_quarantined,
            g.n_errored,
            g.n_batches,
        )
        assert r.latency_p50_ms == pytest.approx(g.latency_p50_ms)
        assert r.latency_p95_ms == g.latency_p95_ms and r.n_fetched == 100
    assert health[-1].invalid_output_rate == pytest.approx(0.08)
    assert [r.n_alerts_day for r in health] == [0] * 9 + [1]

    # reports are finalized 02:10-03:50 UTC, so calendar days and 02:00 windows coincide here
    counts = label_counts(empty_warehouse, window_start(days[0]), 10)
    for r in prevalence:
        c = counts[r.day]["cxr"]
        assert r.n_reports == c.n
        assert r.n_with_value == c.count(r.label_path, r.label_value)
        assert r.share == pytest.approx(r.n_with_value / r.n_reports)
    effusion = {
        (r.day, r.label_value): r.n_with_value
        for r in prevalence
        if r.label_path == "Pleural Effusion"
    }
    assert effusion[(days[0], "positive")] == 15 and effusion[(days[-1], "negative")] == 77
    assert len({(r.label_path, r.label_value) for r in prevalence}) == 16
    assert len(prevalence) == 16 * 10  # dense: every value on every day
