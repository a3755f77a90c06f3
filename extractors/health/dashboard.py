"""The data behind the RRIEF health page (and its JSON API): the last N days of volumes,
quarantine and invalid-output rates, latency, label prevalence with drift flags, and alerts.

Drift flags are recomputed for every shown day with the same test as the daily check
(:func:`extractors.health.drift.detect_drift`), so the page also shows days the check never ran
for; stored alerts are listed as they are.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Engine

from extractors.health import queries
from extractors.health.drift import DayCounts, detect_drift
from extractors.health.metrics import MetricsGroup, combine
from extractors.health.queries import AlertRecord, ValidationRecord
from extractors.health.thresholds import HealthThresholds
from extractors.lifecycle.reextract import Progress, reextraction_progress
from extractors.schemas import SchemaError, get_schema


class PipelineDay(BaseModel):
    """One day of pipeline totals over all schemas and backends."""

    day: date
    n_fetched: int | None = None
    n_record_errors: int | None = None
    n_in: int = 0
    n_loaded: int = 0
    n_quarantined: int = 0
    n_errored: int = 0
    quarantine_rate: float | None = None
    invalid_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


class DriftFlag(BaseModel):
    """A flagged value on one day."""

    day: date
    value: str
    share_today: float
    share_baseline: float
    q_value: float


class PrevalenceSeries(BaseModel):
    """Daily share of each value of one label path (``None``: no reports that day)."""

    schema_name: str
    path: str
    shares: dict[str, list[float | None]]
    flags: list[DriftFlag] = Field(default_factory=list)


class ValidationDay(BaseModel):
    """One day's kept Great Expectations results: how many, and the failed ones to open."""

    day: date
    n_results: int
    n_failed: int
    failed: list[ValidationRecord] = Field(default_factory=list)


class Dashboard(BaseModel):
    """Everything the page shows."""

    generated_at: AwareDatetime
    window_start: AwareDatetime
    days: list[date]
    thresholds: HealthThresholds
    pipeline: list[PipelineDay]
    schemas: dict[str, list[int]] = Field(
        default_factory=dict, description="reports with valid labels per schema and day"
    )
    prevalence: list[PrevalenceSeries] = Field(default_factory=list)
    drift_skipped: dict[str, list[str]] = Field(
        default_factory=dict, description="day -> schemas not drift-tested, with the reason"
    )
    alerts: list[AlertRecord] = Field(default_factory=list)
    validations: list[ValidationDay] = Field(
        default_factory=list, description="kept validation results per day, newest first"
    )
    adapters: list[Progress] = Field(
        default_factory=list,
        description="per schema with a production adapter: reports labelled by it / all",
    )


def _path_rank(schema_name: str) -> dict[str, int]:
    """Label paths in schema order (``field`` or ``field.key``); empty for an unknown schema."""
    try:
        schema = get_schema(schema_name)
    except SchemaError:  # a site schema no longer installed: alphabetical order instead
        return {}
    paths: list[str] = []
    for f in schema.fields:
        keys = schema.keys_for(f)
        paths.extend([f"{f.name}.{k}" for k in keys] if keys else [f.name])
    return {p: i for i, p in enumerate(paths)}


def last_window_start(engine: Engine, last_day: date | datetime | None = None) -> datetime:
    """Start of the newest day shown: ``last_day`` at the time of day of the newest run's data
    interval (UTC midnight without runs); default the newest run's interval start itself."""
    if isinstance(last_day, datetime):
        if last_day.tzinfo is None:
            raise ValueError(f"last_day must be timezone-aware, got {last_day!r}")
        return last_day
    if isinstance(last_day, date):
        anchor = queries.latest_anchor(engine)
        clock = anchor.astimezone(UTC).timetz() if anchor else time(0, tzinfo=UTC)
        return datetime.combine(last_day, clock)
    anchor = queries.latest_anchor(engine)
    if anchor is not None:
        return anchor.astimezone(UTC)
    now = datetime.now(UTC)
    return datetime.combine(now.date() - timedelta(days=1), time(0), tzinfo=UTC)


def _pipeline_days(
    days: list[date], groups: list[MetricsGroup], fetched: dict[date, queries.FetchVolume]
) -> list[PipelineDay]:
    by_day: dict[date, list[MetricsGroup]] = defaultdict(list)
    for g in groups:
        by_day[g.day].append(g)
    out: list[PipelineDay] = []
    for d in days:
        f = fetched.get(d)
        row = PipelineDay(
            day=d,
            n_fetched=f.n_fetched if f else None,
            n_record_errors=f.n_record_errors if f else None,
        )
        if by_day.get(d):
            t = combine(by_day[d], d, "all")
            row = row.model_copy(
                update={
                    "n_in": t.n_in,
                    "n_loaded": t.n_loaded,
                    "n_quarantined": t.n_quarantined,
                    "n_errored": t.n_errored,
                    "quarantine_rate": t.quarantine_rate if t.n_in else None,
                    "invalid_rate": t.invalid_rate if t.n_in else None,
                    "latency_p50_ms": t.latency_p50_ms,
                    "latency_p95_ms": t.latency_p95_ms,
                }
            )
        out.append(row)
    return out


MAX_FAILED_LISTED = 50  # failed results listed per day (the rest are counted)


def _validation_days(records: list[ValidationRecord]) -> list[ValidationDay]:
    by_day: dict[date, list[ValidationRecord]] = defaultdict(list)
    for r in records:
        by_day[r.day].append(r)
    out = []
    for d in sorted(by_day, reverse=True):
        failed = [r for r in by_day[d] if not r.success]
        out.append(
            ValidationDay(
                day=d,
                n_results=len(by_day[d]),
                n_failed=len(failed),
                failed=failed[:MAX_FAILED_LISTED],
            )
        )
    return out


def build_dashboard(
    engine: Engine,
    days: int = 30,
    *,
    last_day: date | datetime | None = None,
    thresholds: HealthThresholds | None = None,
) -> Dashboard:
    """The page's data for ``days`` days ending with ``last_day`` (default: the newest run's
    data interval; its time of day anchors every day window)."""
    if not 1 <= days <= 366:
        raise ValueError(f"days must be between 1 and 366, got {days}")
    th = thresholds or HealthThresholds()
    last = last_window_start(engine, last_day)
    first = last - timedelta(days=days - 1)
    shown = [(first + timedelta(days=i)).date() for i in range(days)]

    groups = queries.metrics_groups(engine, first, days)
    fetched = queries.fetch_volumes(engine, first, days)
    counts = queries.label_counts(
        engine, first - timedelta(days=th.drift_baseline_days), days + th.drift_baseline_days
    )
    alerts = queries.recent_alerts(engine, first, days)
    validations = _validation_days(queries.validation_results(engine, first, days))

    schemas = sorted({name for per in counts.values() for name in per})
    history: dict[str, dict[date, DayCounts]] = {name: {} for name in schemas}
    for d, per in counts.items():
        for name, c in per.items():
            history[name][d] = c

    flags: dict[tuple[str, str], list[DriftFlag]] = defaultdict(list)
    skipped: dict[str, list[str]] = {}
    for d in shown:
        today = {name: history[name][d] for name in schemas if d in history[name]}
        if not today:
            continue
        window = [d - timedelta(days=k) for k in range(1, th.drift_baseline_days + 1)]
        baseline = {
            name: [history[name][b] for b in window if b in history[name]] for name in schemas
        }
        report = detect_drift(today, baseline, th)
        if report.skipped:
            skipped[d.isoformat()] = [f"{s.schema_name}: {s.reason}" for s in report.skipped]
        for r in report.flagged:
            flags[(r.schema_name, r.path)].append(
                DriftFlag(
                    day=d,
                    value=r.value,
                    share_today=r.share_today,
                    share_baseline=r.share_baseline,
                    q_value=r.q_value,
                )
            )

    prevalence: list[PrevalenceSeries] = []
    for name in schemas:
        per_day = [history[name].get(d) for d in shown]
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for c in per_day:
            for path, values in (c.counts if c else {}).items():
                for value, x in values.items():
                    totals[path][value] += x
        rank = _path_rank(name)
        for path in sorted(totals, key=lambda p: (rank.get(p, len(rank)), p)):
            ordered = sorted(totals[path], key=lambda v: (-totals[path][v], v))
            shares = {
                value: [(c.count(path, value) / c.n if c and c.n else None) for c in per_day]
                for value in ordered
            }
            prevalence.append(
                PrevalenceSeries(
                    schema_name=name, path=path, shares=shares, flags=flags.get((name, path), [])
                )
            )
    return Dashboard(
        generated_at=datetime.now(UTC),
        window_start=first,
        days=shown,
        thresholds=th,
        pipeline=_pipeline_days(shown, groups, fetched),
        schemas={
            name: [history[name][d].n if d in history[name] else 0 for d in shown]
            for name in schemas
        },
        prevalence=prevalence,
        drift_skipped=skipped,
        alerts=alerts,
        validations=validations,
        adapters=reextraction_progress(engine),
    )
