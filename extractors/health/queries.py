"""Read-only warehouse queries of the health check and page: daily label counts, daily
extraction metrics, fetch volumes and recent alerts.

Days are windows of 24 hours starting at ``start`` (for the DAG: the data interval start, so a
02:00 schedule gives 02:00-to-02:00 days); each window is named by the date it starts on.
Label counts use the same extraction per report as dbt's ``int_extractions__latest_valid``
(newest ``ok`` extraction of the report's current text, highest schema version first) and date
a report by ``report_final_at``, the column the pipeline's fetch windows use.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, text

from extractors.health.drift import DayCounts
from extractors.health.metrics import MetricsGroup
from extractors.warehouse.load import transaction

Bind = Engine | Connection
DAY_SECONDS = 86400
FETCH_TASK_ID = "fetch"  # the task of rrief_daily that records RIS volumes

# Every label path with its value as text: scalars, per-key objects (path "field.key"),
# list fields (one row per element). JSON null becomes the value 'null'.
_LABEL_COUNTS_SQL = text(
    """
    with candidates as (
        select
            e.schema_name,
            e.labels,
            floor(extract(epoch from (r.report_final_at - :start)) / :day)::int as bucket,
            row_number() over (
                partition by e.report_key, e.schema_name
                order by e.schema_version desc, e.extracted_at desc, e.extraction_id desc
            ) as recency
        from raw.extractions e
        join raw.reports r
            on r.report_key = e.report_key and r.content_sha256 = e.content_sha256
        where e.status = 'ok'
            and r.report_final_at >= :start and r.report_final_at < :end
    ),
    latest as (
        select schema_name, bucket, labels from candidates where recency = 1
    ),
    fields as (
        select l.schema_name, l.bucket, f.key as field, f.value
        from latest l cross join lateral jsonb_each(l.labels) f
    ),
    flat as (
        select schema_name, bucket, field as path, coalesce(value #>> '{}', 'null') as value
        from fields where jsonb_typeof(value) not in ('object', 'array')
        union all
        select schema_name, bucket, field || '.' || k.key, coalesce(k.value #>> '{}', 'null')
        from fields cross join lateral jsonb_each(fields.value) k
        where jsonb_typeof(fields.value) = 'object'
        union all
        select schema_name, bucket, field, v.value
        from fields cross join lateral jsonb_array_elements_text(fields.value) v
        where jsonb_typeof(fields.value) = 'array'
    )
    select schema_name, bucket, null as path, null as value, count(*) as n
    from latest group by schema_name, bucket
    union all
    select schema_name, bucket, path, value, count(*) as n
    from flat group by schema_name, bucket, path, value
    """
)

_METRICS_SQL = text(
    """
    with m as (
        select *,
            floor(extract(epoch from (data_interval_start - :start)) / :day)::int as bucket
        from ops.run_metrics
        where schema_name is not null
            and data_interval_start >= :start and data_interval_start < :end
    ),
    runs as (
        select bucket, run_id,
            row_number() over (
                partition by bucket order by max(recorded_at) desc, run_id desc
            ) as rn
        from m group by bucket, run_id
    )
    select
        m.bucket, m.run_id, m.schema_name, m.backend, m.adapter_id,
        count(*) as n_batches,
        sum(m.n_in) as n_in, sum(m.n_loaded) as n_loaded,
        sum(m.n_quarantined) as n_quarantined, sum(m.n_errored) as n_errored,
        sum(m.latency_p50_ms * m.n_in)
            / nullif(sum(case when m.latency_p50_ms is not null then m.n_in end), 0)
            as latency_p50_ms,
        max(m.latency_p95_ms) as latency_p95_ms
    from m join runs on runs.bucket = m.bucket and runs.run_id = m.run_id and runs.rn = 1
    group by m.bucket, m.run_id, m.schema_name, m.backend, m.adapter_id
    order by m.bucket, m.schema_name, m.backend, m.adapter_id
    """
)

_FETCH_SQL = text(
    """
    with m as (
        select *,
            floor(extract(epoch from (data_interval_start - :start)) / :day)::int as bucket,
            row_number() over (
                partition by floor(extract(epoch from (data_interval_start - :start)) / :day)
                order by recorded_at desc, run_id desc
            ) as rn
        from ops.run_metrics
        where task_id = :task and data_interval_start >= :start and data_interval_start < :end
    )
    select bucket, n_loaded as n_fetched, n_errored as n_record_errors from m where rn = 1
    """
)

_ALERTS_SQL = text(
    """
    select window_start, check_name, schema_name, subject, observed, expected, threshold, n,
        n_baseline, p_value, q_value, message, run_id, created_at
    from ops.alerts
    where window_start >= :start and window_start < :end
    order by window_start desc, check_name, subject
    """
)


def _params(start: datetime, days: int) -> dict[str, Any]:
    if start.tzinfo is None:
        raise ValueError(f"start must be timezone-aware, got {start!r}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    return {"start": start, "end": start + timedelta(days=days), "day": DAY_SECONDS}


def _day(start: datetime, bucket: int) -> date:
    return (start + timedelta(days=bucket)).date()


def label_counts(bind: Bind, start: datetime, days: int) -> dict[date, dict[str, DayCounts]]:
    """``{day: {schema: DayCounts}}`` for the ``days`` windows from ``start`` (days without
    reports are absent)."""
    totals: dict[tuple[int, str], int] = {}
    counts: dict[tuple[int, str], dict[str, dict[str, int]]] = {}
    with transaction(bind) as conn:
        for row in conn.execute(_LABEL_COUNTS_SQL, _params(start, days)):
            key = (int(row.bucket), str(row.schema_name))
            if row.path is None:
                totals[key] = int(row.n)
            else:
                counts.setdefault(key, {}).setdefault(row.path, {})[row.value] = int(row.n)
    out: dict[date, dict[str, DayCounts]] = {}
    for (bucket, schema_name), n in totals.items():
        day_counts = DayCounts(n=n, counts=counts.get((bucket, schema_name), {}))
        out.setdefault(_day(start, bucket), {})[schema_name] = day_counts
    return out


def metrics_groups(bind: Bind, start: datetime, days: int) -> list[MetricsGroup]:
    """Extraction metrics per day, schema, backend and adapter (newest run of each day)."""
    with transaction(bind) as conn:
        rows = conn.execute(_METRICS_SQL, _params(start, days)).mappings().all()
    return [
        MetricsGroup(
            day=_day(start, int(r["bucket"])),
            **{k: r[k] for k in r if k != "bucket"},
        )
        for r in rows
    ]


class FetchVolume(BaseModel):
    """Reports the RIS delivered in a day and records it could not read."""

    n_fetched: int
    n_record_errors: int


def fetch_volumes(bind: Bind, start: datetime, days: int) -> dict[date, FetchVolume]:
    """RIS volumes per day from the fetch task's metrics (newest run of each day)."""
    params = {**_params(start, days), "task": FETCH_TASK_ID}
    with transaction(bind) as conn:
        rows = conn.execute(_FETCH_SQL, params).mappings().all()
    return {
        _day(start, int(r["bucket"])): FetchVolume(
            n_fetched=int(r["n_fetched"] or 0), n_record_errors=int(r["n_record_errors"] or 0)
        )
        for r in rows
    }


class AlertRecord(BaseModel):
    """A stored row of ``ops.alerts`` as the page shows it."""

    window_start: datetime
    check_name: str
    schema_name: str | None
    subject: str
    observed: float | None
    expected: float | None
    threshold: float | None
    n: int | None
    n_baseline: int | None
    p_value: float | None
    q_value: float | None
    message: str
    run_id: str | None
    created_at: datetime


def recent_alerts(bind: Bind, start: datetime, days: int) -> list[AlertRecord]:
    """Stored alerts whose window starts in the ``days`` from ``start``, newest first."""
    with transaction(bind) as conn:
        rows = conn.execute(_ALERTS_SQL, _params(start, days)).mappings().all()
    return [AlertRecord.model_validate(dict(r)) for r in rows]


_VALIDATIONS_SQL = text(
    """
    with v as (
        select *,
            floor(extract(epoch from (data_interval_start - :start)) / :day)::int as bucket
        from ops.validation_results
        where data_interval_start >= :start and data_interval_start < :end
    )
    select bucket, run_id, schema_name, table_name, batch, success, evaluated, unsuccessful,
        n_rows, result_path
    from v
    order by bucket desc, success, schema_name, batch, table_name
    """
)


class ValidationRecord(BaseModel):
    """One kept Great Expectations result (``ops.validation_results``)."""

    day: date
    run_id: str
    schema_name: str
    table_name: str
    batch: str
    success: bool
    evaluated: int
    unsuccessful: int
    n_rows: int
    result_path: str


def validation_results(bind: Bind, start: datetime, days: int) -> list[ValidationRecord]:
    """Kept validation results of the runs whose interval starts in the ``days`` from
    ``start``, newest day first, failed ones first within a day."""
    with transaction(bind) as conn:
        rows = conn.execute(_VALIDATIONS_SQL, _params(start, days)).mappings().all()
    return [
        ValidationRecord(day=_day(start, int(r["bucket"])), **{k: r[k] for k in r if k != "bucket"})
        for r in rows
    ]


def latest_anchor(bind: Bind) -> datetime | None:
    """The newest run's data interval start (its time of day anchors the page's days)."""
    with transaction(bind) as conn:
        return conn.execute(
            text("select max(data_interval_start) from ops.run_metrics")
        ).scalar_one()
