"""``dbt source freshness`` results as ``ops.alerts`` rows (check ``freshness``).

dbt writes ``sources.json`` (one result per source table with a freshness rule: status
``pass`` | ``warn`` | ``error`` | ``runtime error``, age of the newest row, the rule). A table
that is not ``pass`` is one alert; each run replaces only the freshness alerts of its window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine

from extractors.health.alerts import Alert, store_alerts


class FreshnessResult(BaseModel):
    """One source table's freshness, as dbt reported it."""

    source: str  # e.g. raw.extractions
    status: str
    age_hours: float | None
    warn_after_hours: float | None
    error_after_hours: float | None


PERIOD_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}


def _hours(rule: dict[str, Any] | None) -> float | None:
    if not rule or rule.get("count") is None or rule.get("period") is None:
        return None
    return float(rule["count"]) * PERIOD_HOURS[rule["period"]]


def read_sources_json(path: Path) -> list[FreshnessResult]:
    """The results of ``dbt source freshness`` from its ``sources.json``."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for r in doc.get("results", []):
        # unique_id: source.<project>.<source name>.<table>; the relation is raw.<table>
        table = r["unique_id"].split(".")[-1]
        criteria = r.get("criteria") or {}
        age = r.get("max_loaded_at_time_ago_in_s")
        out.append(
            FreshnessResult(
                source=f"raw.{table}",
                status=r.get("status", "runtime error"),
                age_hours=None if age is None else float(age) / 3600,
                warn_after_hours=_hours(criteria.get("warn_after")),
                error_after_hours=_hours(criteria.get("error_after")),
            )
        )
    return out


def freshness_alerts(
    results: Sequence[FreshnessResult], window_start: datetime, window_end: datetime, **ids: Any
) -> list[Alert]:
    """One alert per source table whose freshness is not ``pass``."""
    alerts = []
    for r in results:
        if r.status == "pass":
            continue
        age = "unknown" if r.age_hours is None else f"{r.age_hours:.1f} h"
        limit = r.error_after_hours if r.status == "error" else r.warn_after_hours
        alerts.append(
            Alert(
                window_start=window_start,
                window_end=window_end,
                check_name="freshness",
                subject=r.source,
                observed=r.age_hours,
                threshold=limit,
                message=(
                    f"{r.source} is stale ({r.status}): its newest row was loaded {age} ago"
                    + (f", limit {limit:g} h" if limit is not None else "")
                    + "; check the fetch/extract tasks of the last runs"
                ),
                details={"status": r.status, "warn_after_hours": r.warn_after_hours},
                **ids,
            )
        )
    return alerts


def store_freshness(
    engine: Engine,
    results: Sequence[FreshnessResult],
    window_start: datetime,
    window_end: datetime,
    **ids: Any,
) -> list[Alert]:
    """Replace the window's freshness alerts with those of ``results``; return them."""
    alerts = freshness_alerts(results, window_start, window_end, **ids)
    store_alerts(engine, window_start, alerts, checks=("freshness",))
    return alerts
