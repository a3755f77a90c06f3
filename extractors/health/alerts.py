"""Health alerts: the ``Alert`` model, how findings become alerts, storing them in ``ops.alerts``,
and the ``PipelineHealthError`` that turns them into a failed Airflow task.

Messages hold schema and label names, counts, rates and p-values only, never report text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, delete, insert

from extractors.health.drift import DriftResult
from extractors.health.metrics import RateFinding, VolumeFinding
from extractors.pipeline.reconcile import DayCount
from extractors.warehouse.load import transaction
from extractors.warehouse.models import alerts as alerts_table

CheckName = Literal["drift", "invalid_output_rate", "volume", "reconciliation", "freshness", "gate"]
# The checks of the daily health check (``check_health``); reconciliation has its own task.
HEALTH_CHECKS: tuple[CheckName, ...] = ("drift", "invalid_output_rate", "volume")


class Alert(BaseModel):
    """One alert of one day's window, as stored in ``ops.alerts``."""

    model_config = ConfigDict(frozen=True)

    window_start: AwareDatetime
    window_end: AwareDatetime
    check_name: CheckName
    schema_name: str | None = None
    subject: str = Field(min_length=1)
    observed: float | None = None
    expected: float | None = None
    threshold: float | None = None
    n: int | None = None
    n_baseline: int | None = None
    p_value: float | None = None
    q_value: float | None = None
    message: str = Field(min_length=1)
    details: dict[str, Any] = Field(default_factory=dict)
    dag_id: str | None = None
    run_id: str | None = None


class PipelineHealthError(RuntimeError):
    """The daily health check found alerts (already stored in ``ops.alerts``); raised so the
    DAG's health task fails with a message that names every alert."""

    def __init__(self, alerts: Sequence[Alert]) -> None:
        self.alerts = list(alerts)
        days = sorted({a.window_start.date().isoformat() for a in self.alerts}) or ["?"]
        span = f"day starting {days[0]}" if len(days) == 1 else f"days {days[0]} to {days[-1]}"
        lines = [f"{len(self.alerts)} RRIEF health alert(s) for the {span}:"]
        lines += [f"- [{a.check_name}] {a.message}" for a in self.alerts]
        lines.append(
            "Drift or invalid outputs usually mean the RIS feed or a report template changed; "
            "see ops.alerts and the RRIEF health page."
        )
        super().__init__("\n".join(lines))


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def drift_alerts(
    results: Sequence[DriftResult], window_start: datetime, window_end: datetime, **ids: Any
) -> list[Alert]:
    """One alert per (schema, label path) with flagged values, headed by the largest change."""
    by_path: dict[tuple[str, str], list[DriftResult]] = {}
    for r in results:
        if r.flagged:
            by_path.setdefault((r.schema_name, r.path), []).append(r)
    out: list[Alert] = []
    for (schema_name, path), flagged in sorted(by_path.items()):
        flagged.sort(key=lambda r: -abs(r.change))
        top = flagged[0]
        moves = "; ".join(
            f"{r.value}: {_pct(r.share_today)} today vs {_pct(r.share_baseline)} baseline "
            f"(q={r.q_value:.2g}, {r.method})"
            for r in flagged
        )
        out.append(
            Alert(
                window_start=window_start,
                window_end=window_end,
                check_name="drift",
                schema_name=schema_name,
                subject=f"{schema_name}:{path}",
                observed=top.share_today,
                expected=top.share_baseline,
                n=top.n_today,
                n_baseline=top.n_baseline,
                p_value=top.p_value,
                q_value=top.q_value,
                message=(
                    f"label drift in {schema_name} '{path}' (n={top.n_today} today, "
                    f"{top.n_baseline} baseline): {moves}"
                ),
                details={
                    "values": [
                        r.model_dump(include={"value", "x_today", "x_baseline", "q_value"})
                        | {"method": r.method, "dispersion": r.dispersion}
                        for r in flagged
                    ]
                },
                **ids,
            )
        )
    return out


def rate_alerts(
    findings: Sequence[RateFinding], window_start: datetime, window_end: datetime, **ids: Any
) -> list[Alert]:
    """One alert per schema (or ``all``) whose invalid-output rate exceeds the threshold."""
    out: list[Alert] = []
    for f in findings:
        g = f.group
        out.append(
            Alert(
                window_start=window_start,
                window_end=window_end,
                check_name="invalid_output_rate",
                schema_name=None if g.schema_name == "all" else g.schema_name,
                subject=g.label,
                observed=g.invalid_rate,
                threshold=f.threshold,
                n=g.n_in,
                message=(
                    f"invalid-output rate of {g.label} is {_pct(g.invalid_rate)} "
                    f"({g.n_quarantined} quarantined + {g.n_errored} errored of {g.n_in}), "
                    f"above {_pct(f.threshold)}"
                ),
                details={"n_quarantined": g.n_quarantined, "n_errored": g.n_errored},
                **ids,
            )
        )
    return out


def volume_alerts(
    findings: Sequence[VolumeFinding], window_start: datetime, window_end: datetime, **ids: Any
) -> list[Alert]:
    """One alert per schema whose volume collapsed against its weekday median."""
    return [
        Alert(
            window_start=window_start,
            window_end=window_end,
            check_name="volume",
            schema_name=f.schema_name,
            subject=f.schema_name,
            observed=float(f.n_today),
            expected=f.weekday_median,
            threshold=f.threshold,
            n=f.n_today,
            message=(
                f"{f.schema_name} volume is {f.n_today} reports, below "
                f"{_pct(f.threshold)} of the weekday median {f.weekday_median:g} "
                f"(previous weeks: {', '.join(str(w) for w in f.weeks)})"
            ),
            details={"weeks": f.weeks},
            **ids,
        )
        for f in findings
    ]


def reconciliation_alerts(counts: Sequence[DayCount], **ids: Any) -> list[Alert]:
    """One alert per day whose RIS and warehouse counts differ."""
    out: list[Alert] = []
    for c in counts:
        if not c.difference:
            continue
        day = c.window_start.date().isoformat()
        if c.difference > 0:
            why = (
                f"{c.difference} report(s) of that day are not in the warehouse: they reached "
                "the RIS after the look-back had passed the day, or could not be read (see the "
                "fetch log); rerun the day or raise RRIEF_FETCH_LOOKBACK_DAYS"
            )
        else:
            why = (
                f"the warehouse has {-c.difference} report(s) of that day the RIS no longer "
                "lists there (deleted, or their final time moved)"
            )
        out.append(
            Alert(
                window_start=c.window_start,
                window_end=c.window_end,
                check_name="reconciliation",
                subject=c.source,
                observed=float(c.warehouse),
                expected=float(c.ris),
                n=c.ris,
                message=f"{day} {c.source}: RIS has {c.ris} reports, the warehouse {c.warehouse}; {why}",
                details={"ris": c.ris, "warehouse": c.warehouse},
                **ids,
            )
        )
    return out


def store_alerts(
    bind: Engine | Connection,
    window_start: datetime,
    alerts: Sequence[Alert],
    checks: Sequence[CheckName] = HEALTH_CHECKS,
) -> int:
    """Replace the stored ``checks`` alerts of the window starting ``window_start`` with
    ``alerts`` in one transaction (a rerun of a check leaves exactly its own result; other
    checks' alerts of the window stay). Returns rows written."""
    for a in alerts:
        if a.window_start != window_start:
            raise ValueError(
                f"alert {a.subject!r} is for the window {a.window_start}, not {window_start}"
            )
        if a.check_name not in checks:
            raise ValueError(f"alert {a.subject!r} is a {a.check_name} alert, not one of {checks}")
    with transaction(bind) as conn:
        conn.execute(
            delete(alerts_table).where(
                alerts_table.c.window_start == window_start,
                alerts_table.c.check_name.in_(list(checks)),
            )
        )
        if alerts:
            conn.execute(insert(alerts_table), [a.model_dump() for a in alerts])
    return len(alerts)
