"""Which run a pipeline step belongs to: the ids every metrics and failure row carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict


class RunContext(BaseModel):
    """The DAG run, task and data interval a step runs for (plain values, XCom-safe)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    dag_id: str = "rrief_daily"
    task_id: str
    map_index: int = -1
    data_interval_start: AwareDatetime | None = None
    data_interval_end: AwareDatetime | None = None

    @classmethod
    def from_airflow(cls, context: Mapping[str, Any]) -> RunContext:
        """From an Airflow task context (``get_current_context()`` or a callback's context)."""
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            run_id=str(context["run_id"]),
            dag_id=str(ti.dag_id),
            task_id=str(ti.task_id),
            map_index=-1 if map_index is None else int(map_index),
            data_interval_start=_aware(context.get("data_interval_start")),
            data_interval_end=_aware(context.get("data_interval_end")),
        )


def _aware(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation), ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
