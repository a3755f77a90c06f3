"""Reconciliation: the RIS's count of reports per day against the warehouse's, so a report the
pipeline never loaded (it reached the RIS after the look-back had passed its day, or could not
be read) or one the RIS no longer has becomes an alert instead of a silent gap.

Days are the DAG's 24-hour data intervals: the run's own and the ``days - 1`` before it, of
those the pipeline has fetched (a fetch row in ``ops.run_metrics``; days before the pipeline's
first run are a backfill question, not a difference). The RIS side uses the connector's own ``count(start, end)`` when it has one (SQL: ``count(*)`` in the
database), else it counts what ``fetch`` yields (records and unreadable records alike).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import Engine, text

from extractors.ris.base import RISConnector

log = logging.getLogger("rrief.pipeline")

_FETCHED_SQL = text(
    """
    SELECT DISTINCT data_interval_start FROM ops.run_metrics
    WHERE task_id = :task AND data_interval_start >= :first AND data_interval_start <= :last
    """
)
_WAREHOUSE_COUNT_SQL = text(
    """
    SELECT count(*) FROM raw.reports
    WHERE source = :source AND report_final_at >= :start AND report_final_at < :end
    """
)


class DayCount(BaseModel):
    """One day's reports in the RIS and in ``raw.reports`` (from the same source)."""

    model_config = ConfigDict(frozen=True)

    source: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    ris: int
    warehouse: int

    @property
    def difference(self) -> int:
        """RIS minus warehouse: > 0 reports missing from the warehouse, < 0 gone from the RIS."""
        return self.ris - self.warehouse


def ris_count(connector: RISConnector, start: datetime, end: datetime) -> int:
    """Reports the RIS has finalized in ``[start, end)``."""
    count = getattr(connector, "count", None)
    if callable(count):
        return int(count(start, end))
    return sum(1 for _ in connector.fetch(start, end))


def day_windows(start: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """The ``days`` 24-hour windows ending with the one starting at ``start``, oldest first."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    first = start - timedelta(days=days - 1)
    return [(first + timedelta(days=k), first + timedelta(days=k + 1)) for k in range(days)]


def reconcile(
    connector: RISConnector,
    engine: Engine,
    start: datetime,
    days: int,
    fetch_task_id: str = "fetch",
) -> list[DayCount]:
    """RIS and warehouse counts for the fetched ones of the ``days`` windows up to (and always
    including) the one at ``start``."""
    out: list[DayCount] = []
    windows = day_windows(start, days)
    with engine.connect() as conn:
        fetched = set(
            conn.execute(
                _FETCHED_SQL, {"task": fetch_task_id, "first": windows[0][0], "last": start}
            ).scalars()
        )
        for lo, hi in windows:
            if lo != start and lo not in fetched:
                continue
            stored = conn.execute(
                _WAREHOUSE_COUNT_SQL, {"source": connector.source, "start": lo, "end": hi}
            ).scalar_one()
            out.append(
                DayCount(
                    source=connector.source,
                    window_start=lo,
                    window_end=hi,
                    ris=ris_count(connector, lo, hi),
                    warehouse=int(stored),
                )
            )
    differing = [c for c in out if c.difference]
    log.info(
        "reconciled %d days of %s: %s",
        len(out),
        connector.source,
        "; ".join(
            f"{c.window_start:%Y-%m-%d} RIS {c.ris} vs warehouse {c.warehouse}" for c in differing
        )
        or "every day matches",
    )
    return out
