"""The Airflow ``on_failure_callback``: record why a task attempt failed in ``ops.task_failures``.

A callback must never raise (it would hide the task's own error), so problems writing the row
are logged and swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from extractors.warehouse.db import make_engine
from extractors.warehouse.load import insert_task_failures
from extractors.warehouse.rows import TaskFailureRow

log = logging.getLogger("rrief.pipeline")

MAX_ERROR_CHARS = 2000


def failure_row(context: Mapping[str, Any]) -> TaskFailureRow:
    """The failure record of an Airflow callback context (task ids, try, exception text)."""
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    error = f"{type(exc).__name__}: {exc}" if exc is not None else "task failed (no exception)"
    map_index = getattr(ti, "map_index", None)
    return TaskFailureRow(
        dag_id=getattr(ti, "dag_id", None),
        run_id=str(context.get("run_id")) if context.get("run_id") is not None else None,
        task_id=getattr(ti, "task_id", None),
        map_index=map_index if isinstance(map_index, int) else None,
        try_number=getattr(ti, "try_number", None),
        error=error[:MAX_ERROR_CHARS],
    )


def record_failure(context: Mapping[str, Any], url: str | None) -> None:
    """Write one ``ops.task_failures`` row for a failed attempt (``url``: the warehouse)."""
    try:
        row = failure_row(context)
        engine = make_engine(url)
        try:
            insert_task_failures(engine, [row])
        finally:
            engine.dispose()
        log.error("recorded failure of %s.%s: %s", row.dag_id, row.task_id, row.error)
    except Exception:
        log.exception("could not record a task failure in ops.task_failures")
