"""Label drift: does today's share of each label value differ from the trailing weeks?

For every schema, label path (``Pleural Effusion``, ``birads.left``, ``stenosis.LAD``) and value
(``positive``, ``4``, ``70-99``, ``null``), today's share of reports with that value is compared
with its share over the pooled baseline days:

* a schema is tested only with at least ``drift_min_daily_n`` reports today and
  ``drift_min_baseline_days`` baseline days with reports (otherwise it is listed as skipped);
* the test is a pooled two-proportion z-test, its variance inflated by the baseline's Pearson
  overdispersion (day-to-day case-mix swings), or Fisher's exact test when an expected cell
  count is below 5;
* Benjamini-Hochberg over all of the day's tests (every schema, path and value) controls the
  false discovery rate at ``drift_alpha``;
* a value is flagged only when also ``|share today - share baseline| >= drift_min_effect``, so
  trivial shifts on large volumes do not alert.

Everything here is pure (counts in, results out); ``queries`` reads the counts from the warehouse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from extractors.health.stats import (
    Method,
    ProportionTest,
    benjamini_hochberg,
    compare_proportions,
    dispersion_factor,
)
from extractors.health.thresholds import HealthThresholds


class DayCounts(BaseModel):
    """One schema's label counts for one day: ``counts[path][value]`` reports out of ``n``."""

    model_config = ConfigDict(frozen=True)

    n: int = Field(ge=0, description="reports with a valid extraction of the schema that day")
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)

    def count(self, path: str, value: str) -> int:
        return self.counts.get(path, {}).get(value, 0)


class DriftResult(BaseModel):
    """One tested (schema, path, value): today's share against the baseline's."""

    model_config = ConfigDict(frozen=True)

    schema_name: str
    path: str
    value: str
    x_today: int
    n_today: int
    x_baseline: int
    n_baseline: int
    method: Method
    statistic: float | None
    dispersion: float
    p_value: float
    q_value: float
    flagged: bool

    @property
    def share_today(self) -> float:
        return self.x_today / self.n_today if self.n_today else 0.0

    @property
    def share_baseline(self) -> float:
        return self.x_baseline / self.n_baseline if self.n_baseline else 0.0

    @property
    def change(self) -> float:
        return self.share_today - self.share_baseline


class SkippedSchema(BaseModel):
    """A schema whose drift was not tested that day, and why."""

    schema_name: str
    reason: str


class DriftReport(BaseModel):
    """Every test of one day, and the schemas skipped."""

    results: list[DriftResult] = Field(default_factory=list)
    skipped: list[SkippedSchema] = Field(default_factory=list)

    @property
    def flagged(self) -> list[DriftResult]:
        return [r for r in self.results if r.flagged]


def _categories(today: DayCounts, baseline: Sequence[DayCounts]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for day in (today, *baseline):
        for path, values in day.counts.items():
            for value in values:
                seen[(path, value)] = None
    return sorted(seen)


def detect_drift(
    today: Mapping[str, DayCounts],
    baseline: Mapping[str, Sequence[DayCounts]],
    thresholds: HealthThresholds | None = None,
) -> DriftReport:
    """Test every label value of every schema seen today or in its baseline days.

    ``today`` maps schema name to today's counts; ``baseline`` maps schema name to the counts of
    the trailing days (any order; days without reports may be left out or given with n=0).
    """
    th = thresholds or HealthThresholds()
    report = DriftReport()
    pending: list[tuple[dict[str, object], ProportionTest]] = []
    for schema_name in sorted(set(today) | set(baseline)):
        now = today.get(schema_name, DayCounts(n=0))
        days = [d for d in baseline.get(schema_name, ()) if d.n > 0]
        if now.n < th.drift_min_daily_n:
            report.skipped.append(
                SkippedSchema(
                    schema_name=schema_name,
                    reason=f"{now.n} reports today, fewer than drift_min_daily_n={th.drift_min_daily_n}",
                )
            )
            continue
        if len(days) < th.drift_min_baseline_days:
            report.skipped.append(
                SkippedSchema(
                    schema_name=schema_name,
                    reason=(
                        f"{len(days)} baseline days with reports, fewer than "
                        f"drift_min_baseline_days={th.drift_min_baseline_days}"
                    ),
                )
            )
            continue
        n0 = sum(d.n for d in days)
        for path, value in _categories(now, days):
            x1 = now.count(path, value)
            daily = [(d.count(path, value), d.n) for d in days]
            x0 = sum(x for x, _ in daily)
            if x1 > now.n or x0 > n0:
                raise ValueError(
                    f"{schema_name} {path}={value}: more reports with the value than reports "
                    f"({x1}/{now.n} today, {x0}/{n0} baseline)"
                )
            phi = dispersion_factor(daily)
            test = compare_proportions(x1, now.n, x0, n0, dispersion=phi)
            fields: dict[str, object] = {
                "schema_name": schema_name,
                "path": path,
                "value": value,
                "x_today": x1,
                "n_today": now.n,
                "x_baseline": x0,
                "n_baseline": n0,
                "dispersion": phi,
            }
            pending.append((fields, test))
    q_values = benjamini_hochberg([test.p_value for _, test in pending])
    for (fields, test), q in zip(pending, q_values, strict=True):
        result = DriftResult.model_validate(
            {
                **fields,
                "method": test.method,
                "statistic": test.statistic,
                "p_value": test.p_value,
                "q_value": q,
                "flagged": False,
            }
        )
        flagged = q <= th.drift_alpha and abs(result.change) >= th.drift_min_effect
        report.results.append(result.model_copy(update={"flagged": flagged}))
    return report
