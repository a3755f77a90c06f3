"""Synthetic warehouse contents for the health tests: a month of CXR reports with their
extractions and run metrics, where the last day can carry a label shift and a burst of invalid
outputs. Deterministic (no randomness): every day has exactly the same label mix unless told."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from extractors.schemas import get_schema
from extractors.warehouse import load
from extractors.warehouse.rows import ExtractionRow, ReportRow, RunMetricsRow

DAY0 = date(2025, 3, 1)
CLOCK = timedelta(hours=2)  # the DAG's data intervals start at 02:00 UTC


def window_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + CLOCK


def _hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def fill_month(
    engine: Engine,
    *,
    start_day: date = DAY0,
    days: int = 29,
    per_day: int = 100,
    base_effusion: float = 0.15,
    last_effusion: float = 0.15,
    last_quarantined: int = 1,
    last_errored: int = 0,
    run_prefix: str = "scheduled",
) -> list[date]:
    """Load ``days`` days from ``start_day``: ``per_day`` CXR reports a day, a share
    ``base_effusion`` with ``Pleural Effusion: positive`` (``last_effusion`` on the last day),
    and per day a fetch row plus two extract batch rows in ``ops.run_metrics``. Returns the
    days loaded."""
    schema = get_schema("cxr")
    loaded_days = [start_day + timedelta(days=k) for k in range(days)]
    reports: list[ReportRow] = []
    extractions: list[ExtractionRow] = []
    metrics: list[RunMetricsRow] = []
    for k, day in enumerate(loaded_days):
        last = k == days - 1
        share = last_effusion if last else base_effusion
        n_pos = round(share * per_day)
        quarantined = last_quarantined if last else 1
        errored = last_errored if last else 0
        start = window_start(day)
        run_id = f"{run_prefix}__{day.isoformat()}"
        for i in range(per_day):
            key = _hex(f"report-{day}-{i}")
            sha = _hex(f"text-{day}-{i}")
            reports.append(
                ReportRow(
                    report_key=key,
                    patient_key=_hex(f"patient-{i % 37}"),
                    accession_key=_hex(f"acc-{day}-{i}"),
                    source="synthetic",
                    modality="CR",
                    report_type="cxr",
                    exam_at=start + timedelta(minutes=i),
                    report_final_at=start + timedelta(minutes=10 + i),
                    report_text="synthetic report",
                    content_sha256=sha,
                )
            )
            if i >= per_day - quarantined - errored:
                continue  # quarantined or errored: no valid extraction
            labels = schema.empty_labels()
            labels["Support Devices"] = "positive" if i % 4 == 0 else "not_mentioned"
            labels["Pleural Effusion"] = "positive" if i < n_pos else "negative"
            extractions.append(
                ExtractionRow(
                    report_key=key,
                    schema_name="cxr",
                    schema_version=schema.version,
                    backend="rules",
                    extractor_version="rules-test",
                    status="ok",
                    labels=labels,
                    content_sha256=sha,
                    run_id=run_id,
                )
            )
        half = per_day // 2
        metrics.append(
            RunMetricsRow(
                run_id=run_id,
                dag_id="rrief_daily",
                task_id="fetch",
                data_interval_start=start,
                data_interval_end=start + timedelta(days=1),
                n_in=per_day,
                n_loaded=per_day,
            )
        )
        for b, (n_q, n_e) in enumerate(((quarantined, errored), (0, 0))):
            n_in = half if b == 0 else per_day - half
            metrics.append(
                RunMetricsRow(
                    run_id=run_id,
                    dag_id="rrief_daily",
                    task_id="extract",
                    map_index=b,
                    data_interval_start=start,
                    data_interval_end=start + timedelta(days=1),
                    schema_name="cxr",
                    backend="rules",
                    n_in=n_in,
                    n_loaded=n_in - n_q - n_e,
                    n_quarantined=n_q,
                    n_errored=n_e,
                    invalid_output_rate=(n_q + n_e) / n_in,
                    latency_p50_ms=2.0 + b,
                    latency_p95_ms=5.0 + b,
                )
            )
    load.upsert_reports(engine, reports)
    load.upsert_extractions(engine, extractions)
    load.upsert_run_metrics(engine, metrics)
    return loaded_days
