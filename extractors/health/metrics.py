"""Daily pipeline metrics (from ``ops.run_metrics``) and the checks on them: invalid-output rate
above a threshold, and volume far below the usual for the weekday.

Latency: batches record their own p50/p95, and percentiles of different batches cannot be
merged exactly without the raw latencies. A day's p50 is the report-weighted mean of the
batches' p50s (close to the true median when batches are alike), its p95 the highest batch
p95 (an upper bound: never hides a slow batch).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from extractors.health.thresholds import HealthThresholds


class MetricsGroup(BaseModel):
    """Extraction totals of one day for one schema, backend and adapter (the newest run only,
    so a rerun of a day is not counted twice)."""

    model_config = ConfigDict(frozen=True)

    day: date
    schema_name: str
    backend: str | None = None
    adapter_id: str | None = None
    run_id: str | None = None
    n_batches: int = Field(default=1, ge=0)
    n_in: int = Field(default=0, ge=0)
    n_loaded: int = Field(default=0, ge=0)
    n_quarantined: int = Field(default=0, ge=0)
    n_errored: int = Field(default=0, ge=0)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None

    @property
    def n_invalid(self) -> int:
        return self.n_quarantined + self.n_errored

    @property
    def invalid_rate(self) -> float:
        return self.n_invalid / self.n_in if self.n_in else 0.0

    @property
    def quarantine_rate(self) -> float:
        return self.n_quarantined / self.n_in if self.n_in else 0.0

    @property
    def label(self) -> str:
        """``schema:backend[:adapter]``, the alert subject of this group."""
        parts = [self.schema_name, self.backend or "?"]
        if self.adapter_id:
            parts.append(self.adapter_id)
        return ":".join(parts)


def combine(groups: Sequence[MetricsGroup], day: date, schema_name: str) -> MetricsGroup:
    """One group summing ``groups`` (latency as described in the module docstring)."""
    weighted = [(g.latency_p50_ms, g.n_in) for g in groups if g.latency_p50_ms is not None]
    weight = sum(n for _, n in weighted)
    p95s = [g.latency_p95_ms for g in groups if g.latency_p95_ms is not None]
    backends = {g.backend for g in groups}
    adapters = {g.adapter_id for g in groups}
    return MetricsGroup(
        day=day,
        schema_name=schema_name,
        backend=backends.pop() if len(backends) == 1 else None,
        adapter_id=adapters.pop() if len(adapters) == 1 else None,
        n_batches=sum(g.n_batches for g in groups),
        n_in=sum(g.n_in for g in groups),
        n_loaded=sum(g.n_loaded for g in groups),
        n_quarantined=sum(g.n_quarantined for g in groups),
        n_errored=sum(g.n_errored for g in groups),
        latency_p50_ms=(
            sum(p * n for p, n in weighted) / weight
            if weight
            else (statistics.fmean(p for p, _ in weighted) if weighted else None)
        ),
        latency_p95_ms=max(p95s) if p95s else None,
    )


class RateFinding(BaseModel):
    """An invalid-output rate above the threshold."""

    group: MetricsGroup
    threshold: float


class SkippedGroup(BaseModel):
    """A group too small to judge its rate, and why."""

    subject: str
    reason: str


def invalid_rate_findings(
    groups: Sequence[MetricsGroup], thresholds: HealthThresholds | None = None
) -> tuple[list[RateFinding], list[SkippedGroup]]:
    """Groups of one day whose invalid-output rate exceeds ``alert_invalid_rate``.

    Each schema (all backends of it together) and the whole day (``all``) are judged when they
    have at least ``drift_min_daily_n`` reports; a small schema still counts in ``all``.
    """
    th = thresholds or HealthThresholds()
    if not groups:
        return [], []
    day = groups[0].day
    by_schema: dict[str, list[MetricsGroup]] = {}
    for g in groups:
        by_schema.setdefault(g.schema_name, []).append(g)
    candidates = [combine(gs, day, name) for name, gs in sorted(by_schema.items())]
    if len(by_schema) > 1:
        candidates.append(combine(list(groups), day, "all"))
    findings: list[RateFinding] = []
    skipped: list[SkippedGroup] = []
    for g in candidates:
        if g.n_in < th.drift_min_daily_n:
            skipped.append(
                SkippedGroup(
                    subject=g.label,
                    reason=f"{g.n_in} reports, fewer than drift_min_daily_n={th.drift_min_daily_n}",
                )
            )
        elif g.invalid_rate > th.alert_invalid_rate:
            findings.append(RateFinding(group=g, threshold=th.alert_invalid_rate))
    return findings, skipped


class VolumeFinding(BaseModel):
    """A schema whose volume fell far below the median of the same weekday."""

    schema_name: str
    n_today: int
    weekday_median: float
    weeks: list[int]
    threshold: float


def volume_findings(
    today: date,
    volumes: Mapping[date, Mapping[str, int]],
    thresholds: HealthThresholds | None = None,
) -> list[VolumeFinding]:
    """Schemas with fewer than ``alert_volume_ratio`` x the median volume of the same weekday
    over the previous four weeks (a feed or template change often shows as a collapse).

    ``volumes[day][schema]`` is the number of reports extracted; a week without a run is left out
    of the median, and at least two weeks with a median of ``drift_min_daily_n`` or more are
    needed. Comparing like weekdays keeps quiet weekends from alerting.
    """
    th = thresholds or HealthThresholds()
    schemas: set[str] = set()
    for per_schema in volumes.values():
        schemas.update(per_schema)
    out: list[VolumeFinding] = []
    for name in sorted(schemas):
        weeks = [
            volumes[d][name]
            for k in range(1, 5)
            if (d := today - timedelta(days=7 * k)) in volumes and name in volumes[d]
        ]
        if len(weeks) < 2:
            continue
        median = statistics.median(weeks)
        if median < th.drift_min_daily_n:
            continue
        n_today = volumes.get(today, {}).get(name, 0)
        if n_today < th.alert_volume_ratio * median:
            out.append(
                VolumeFinding(
                    schema_name=name,
                    n_today=n_today,
                    weekday_median=median,
                    weeks=weeks,
                    threshold=th.alert_volume_ratio,
                )
            )
    return out


def daily_volumes(groups: Iterable[MetricsGroup]) -> dict[date, dict[str, int]]:
    """``{day: {schema: reports extracted}}`` from metrics groups."""
    out: dict[date, dict[str, int]] = {}
    for g in groups:
        per = out.setdefault(g.day, {})
        per[g.schema_name] = per.get(g.schema_name, 0) + g.n_in
    return out
