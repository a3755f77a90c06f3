"""The daily health check: drift, invalid-output rate and volume for one day, stored as
``ops.alerts`` rows, raising ``PipelineHealthError`` when anything alerts.

The DAG calls :func:`check_from_context` in a ``check_health`` task after the load (it needs
only ``raw`` and ``ops``, not dbt); anything else calls :func:`run_health_check`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Engine

from extractors.health import queries
from extractors.health.alerts import (
    Alert,
    PipelineHealthError,
    drift_alerts,
    rate_alerts,
    reconciliation_alerts,
    store_alerts,
    volume_alerts,
)
from extractors.health.drift import DayCounts, detect_drift
from extractors.health.metrics import daily_volumes, invalid_rate_findings, volume_findings
from extractors.health.thresholds import HealthThresholds
from extractors.pipeline.reconcile import DayCount
from extractors.warehouse.load import transaction

log = logging.getLogger("rrief.health")

VOLUME_LOOKBACK_DAYS = 28


class HealthReport(BaseModel):
    """What one check did: the day, how many tests ran, what was skipped, the alerts."""

    window_start: AwareDatetime
    window_end: AwareDatetime
    reports_by_schema: dict[str, int] = Field(default_factory=dict)
    drift_tests: int = 0
    skipped: list[str] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)


def window_start_of(day: date | datetime) -> datetime:
    """A date means its UTC midnight; a datetime must be timezone-aware (an interval start)."""
    if isinstance(day, datetime):
        if day.tzinfo is None:
            raise ValueError(f"day must be a date or a timezone-aware datetime, got {day!r}")
        return day
    return datetime.combine(day, time(0), tzinfo=UTC)


def run_health_check(
    engine: Engine,
    day: date | datetime,
    *,
    thresholds: HealthThresholds | None = None,
    run_id: str | None = None,
    dag_id: str | None = None,
    raise_on_alert: bool = True,
) -> HealthReport:
    """Check the 24 hours starting at ``day`` against the trailing ``drift_baseline_days``.

    Writes the day's alerts to ``ops.alerts`` (replacing those of an earlier check of the same
    day), commits, then raises :class:`PipelineHealthError` when there are any and
    ``raise_on_alert``. ``thresholds`` default to the settings' defaults.
    """
    th = thresholds or HealthThresholds()
    start = window_start_of(day)
    end = start + timedelta(days=1)
    today = start.date()
    lookback = max(th.drift_baseline_days, VOLUME_LOOKBACK_DAYS)
    first = start - timedelta(days=lookback)
    ids = {"run_id": run_id, "dag_id": dag_id}

    counts = queries.label_counts(
        engine, start - timedelta(days=th.drift_baseline_days), th.drift_baseline_days + 1
    )
    today_counts = counts.get(today, {})
    baseline: dict[str, list[DayCounts]] = {}
    for d, per_schema in counts.items():
        if d != today:
            for name, c in per_schema.items():
                baseline.setdefault(name, []).append(c)
    drift = detect_drift(today_counts, baseline, th)

    groups = queries.metrics_groups(engine, first, lookback + 1)
    today_groups = [g for g in groups if g.day == today]
    rate_found, rate_skipped = invalid_rate_findings(today_groups, th)
    volumes = daily_volumes(groups)
    vol_found = volume_findings(today, volumes, th)

    alerts = [
        *drift_alerts(drift.results, start, end, **ids),
        *rate_alerts(rate_found, start, end, **ids),
        *volume_alerts(vol_found, start, end, **ids),
    ]
    store_alerts(engine, start, alerts)
    report = HealthReport(
        window_start=start,
        window_end=end,
        reports_by_schema={name: c.n for name, c in sorted(today_counts.items())},
        drift_tests=len(drift.results),
        skipped=[f"drift {s.schema_name}: {s.reason}" for s in drift.skipped]
        + [f"invalid-output rate {s.subject}: {s.reason}" for s in rate_skipped],
        alerts=alerts,
    )
    log.info(
        "health check %s: %d drift tests, %d alerts, skipped: %s",
        today.isoformat(),
        report.drift_tests,
        len(alerts),
        "; ".join(report.skipped) or "nothing",
    )
    if alerts and raise_on_alert:
        raise PipelineHealthError(alerts)
    return report


def store_reconciliation(
    engine: Engine,
    counts: list[DayCount],
    *,
    run_id: str | None = None,
    dag_id: str | None = None,
    raise_on_alert: bool = True,
) -> list[Alert]:
    """Alerts for the days whose RIS and warehouse counts differ, stored in ``ops.alerts`` (each
    checked day's reconciliation alerts replaced, in one transaction); then
    :class:`PipelineHealthError` when there are any and ``raise_on_alert``."""
    alerts = reconciliation_alerts(counts, run_id=run_id, dag_id=dag_id)
    with transaction(engine) as conn:
        for c in counts:
            day_alerts = [a for a in alerts if a.window_start == c.window_start]
            store_alerts(conn, c.window_start, day_alerts, checks=("reconciliation",))
    if alerts and raise_on_alert:
        raise PipelineHealthError(alerts)
    return alerts


def check_from_context(context: Mapping[str, Any], engine: Engine | None = None) -> dict[str, Any]:
    """Body of the DAG's ``check_health`` task: check the run's data interval, return a small
    JSON-safe summary (XCom), or raise :class:`PipelineHealthError` (the task fails)."""
    start = context.get("data_interval_start")
    if not isinstance(start, datetime):
        raise ValueError(f"check_health needs the run's data_interval_start, got {start!r}")
    ti = context.get("ti")
    from extractors.settings import get_settings

    settings = get_settings()
    owned = engine is None
    if engine is None:
        from extractors.pipeline.tasks import warehouse_url
        from extractors.warehouse.db import make_engine

        engine = make_engine(warehouse_url(settings))
    try:
        report = run_health_check(
            engine,
            start,
            thresholds=HealthThresholds.from_settings(settings),
            run_id=str(context.get("run_id")) if context.get("run_id") else None,
            dag_id=str(getattr(ti, "dag_id", "")) or None,
        )
    finally:
        if owned:
            engine.dispose()
    return {
        "day": report.window_start.date().isoformat(),
        "drift_tests": report.drift_tests,
        "alerts": len(report.alerts),
        "skipped": report.skipped,
    }
