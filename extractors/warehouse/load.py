"""Idempotent UPSERT loaders for the warehouse tables, each in ONE transaction.

Pass an ``Engine`` and the loader opens, commits (or on any error rolls back) its own
transaction; pass a ``Connection`` already inside a transaction and the loader joins it, so a
caller can load a whole batch (extractions + quarantine + metrics) atomically. Loading the same
rows twice changes nothing: conflicting rows are only updated when their content differs, so
``updated_at``/``run_id`` stay put on a rerun.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any, TypeVar

from psycopg.types.json import Jsonb
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Table,
    and_,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from extractors.warehouse.models import (
    EXTRACTION_KEY,
    extractions,
    quarantine,
    reports,
    run_metrics,
    task_failures,
    validation_results,
)
from extractors.warehouse.rows import (
    ExtractionRow,
    QuarantineRow,
    ReportRow,
    RunMetricsRow,
    TaskFailureRow,
    ValidationResultRow,
)

Bind = Engine | Connection
R = TypeVar("R", bound=BaseModel)

CHUNK_SIZE = 1000


class UpsertCounts(BaseModel):
    """What an UPSERT did: new rows, rows whose content changed, rows already identical."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


@contextmanager
def transaction(bind: Bind) -> Iterator[Connection]:
    """One transaction: a new one on an engine, the caller's one on a connection inside one."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    elif bind.in_transaction():
        yield bind
    else:
        with bind.begin():
            yield bind


def _chunks(rows: Iterable[R], size: int) -> Iterator[list[R]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _dedupe(chunk: Sequence[R], key: Sequence[str]) -> list[R]:
    """Keep the last row per conflict key: one INSERT cannot update the same row twice."""
    by_key: dict[tuple[Any, ...], R] = {}
    for row in chunk:
        by_key[tuple(getattr(row, k) for k in key)] = row
    return list(by_key.values())


def _upsert(
    conn: Connection,
    table: Table,
    params: list[dict[str, Any]],
    conflict: Sequence[str],
    compare: Sequence[str],
    touch: dict[str, Any],
    clear: Table | None = None,
) -> UpsertCounts:
    """INSERT … ON CONFLICT DO UPDATE only where a ``compare`` column differs.

    ``RETURNING (xmax = 0)`` tells inserted rows from updated ones; rows not returned were
    identical already. ``clear``: a table whose rows with the same conflict keys are deleted in
    the same transaction (a result is loaded or quarantined, never both).

    With psycopg 3 the rows travel by COPY into a temporary staging table and one
    ``INSERT … SELECT`` upserts them (a multi-row VALUES statement with thousands of
    parameters costs more to build and parse than the upsert itself); other drivers get the
    multi-row INSERT (and so does an autocommit connection, where a temporary table would not
    outlive its statement). Both write exactly the same rows.
    """
    if _can_copy(conn):
        return _upsert_copy(conn, table, params, conflict, compare, touch, clear)
    stmt = pg_insert(table)
    excluded = stmt.excluded
    update_cols = {c: excluded[c] for c in params[0] if c not in conflict}
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[c] for c in conflict],
        set_={**update_cols, **touch},
        where=or_(*[table.c[c].is_distinct_from(excluded[c]) for c in compare]),
    ).returning(literal_column("(xmax = 0)").label("inserted"))
    flags = conn.execute(stmt, params).scalars().all()
    if clear is not None:
        cols = tuple_(*[clear.c[c] for c in conflict])
        keys = [tuple(p[c] for c in conflict) for p in params]
        conn.execute(clear.delete().where(cols.in_(keys)))
    return _counts(flags, len(params))


def _can_copy(conn: Connection) -> bool:
    """psycopg 3 inside a transaction: COPY into a transaction-scoped staging table works."""
    if conn.dialect.driver != "psycopg":
        return False
    return not conn.connection.driver_connection.autocommit  # type: ignore[union-attr]


def _counts(flags: Sequence[Any], n_params: int) -> UpsertCounts:
    inserted = sum(1 for f in flags if f)
    updated = len(flags) - inserted
    return UpsertCounts(inserted=inserted, updated=updated, unchanged=n_params - len(flags))


def _copy_value(column_type: Any, value: Any) -> Any:
    """A parameter as COPY must receive it: JSON(B) values wrapped as JSON, the way
    SQLAlchemy's JSON type binds them (``None`` is SQL NULL only with ``none_as_null``)."""
    if isinstance(column_type, JSON):
        if value is None and column_type.none_as_null:
            return None
        return Jsonb(value)
    return value


def _upsert_copy(
    conn: Connection,
    table: Table,
    params: list[dict[str, Any]],
    conflict: Sequence[str],
    compare: Sequence[str],
    touch: dict[str, Any],
    clear: Table | None,
) -> UpsertCounts:
    """:func:`_upsert` through COPY into a staging table (same rows, same counts)."""
    names = list(params[0])
    # one staging table per target and column list, dropped when the transaction ends
    stage_name = f"rrief_stage_{table.name}_{len(names)}"
    target = f"{table.schema}.{table.name}" if table.schema else table.name
    quoted = ", ".join(f'"{c}"' for c in names)
    driver = conn.connection.driver_connection
    with driver.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage_name} ON COMMIT DROP AS "
            f"SELECT {quoted} FROM {target} WITH NO DATA"
        )
        cur.execute(f"TRUNCATE {stage_name}")
        types = [table.c[c].type for c in names]
        with cur.copy(f"COPY {stage_name} ({quoted}) FROM STDIN") as copy:
            for row in params:
                copy.write_row([_copy_value(t, row[c]) for t, c in zip(types, names, strict=True)])
    stage = sa_table(stage_name, *[sa_column(c) for c in names])
    stmt = pg_insert(table).from_select(names, select(*[stage.c[c] for c in names]).where(true()))
    excluded = stmt.excluded
    update_cols = {c: excluded[c] for c in names if c not in conflict}
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[c] for c in conflict],
        set_={**update_cols, **touch},
        where=or_(*[table.c[c].is_distinct_from(excluded[c]) for c in compare]),
    ).returning(literal_column("(xmax = 0)").label("inserted"))
    flags = conn.execute(stmt).scalars().all()
    if clear is not None:
        match = and_(*[clear.c[c] == stage.c[c] for c in conflict])
        conn.execute(clear.delete().where(exists().where(match)))
    return _counts(flags, len(params))


def _json_params(rows: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [row.model_dump(mode="python") for row in rows]


def upsert_reports(
    bind: Bind, rows: Iterable[ReportRow], chunk_size: int = CHUNK_SIZE
) -> UpsertCounts:
    """UPSERT pseudonymized reports on ``report_key``; a changed text/hash/metadata updates the
    row and ``updated_at``, identical rows are left alone."""
    compare = [c for c in ReportRow.model_fields if c != "report_key"]
    counts = UpsertCounts()
    with transaction(bind) as conn:
        for chunk in _chunks(rows, chunk_size):
            _check_type(chunk, ReportRow)
            params = _json_params(_dedupe(chunk, ["report_key"]))
            counts += _upsert(
                conn, reports, params, ["report_key"], compare, {"updated_at": func.now()}
            )
    return counts


_EXTRACTION_COMPARE = (
    "backend",
    "adapter_id",
    "status",
    "labels",
    "evidence",
    "error",
    "content_sha256",
)


def upsert_extractions(
    bind: Bind, rows: Iterable[ExtractionRow], chunk_size: int = CHUNK_SIZE
) -> UpsertCounts:
    """UPSERT extraction results on (report_key, schema_name, schema_version,
    extractor_version). The same key leaves ``raw.quarantine``: a result is either loaded or
    quarantined, never both."""
    counts = UpsertCounts()
    with transaction(bind) as conn:
        for chunk in _chunks(rows, chunk_size):
            _check_type(chunk, ExtractionRow)
            deduped = _dedupe(chunk, EXTRACTION_KEY)
            params = _json_params(deduped)
            counts += _upsert(
                conn,
                extractions,
                params,
                EXTRACTION_KEY,
                _EXTRACTION_COMPARE,
                {"extracted_at": func.now()},
                clear=quarantine,
            )
    return counts


def upsert_quarantine(
    bind: Bind, rows: Iterable[QuarantineRow], chunk_size: int = CHUNK_SIZE
) -> UpsertCounts:
    """UPSERT rows that failed validation on the extraction key; the same key leaves
    ``raw.extractions``."""
    counts = UpsertCounts()
    with transaction(bind) as conn:
        for chunk in _chunks(rows, chunk_size):
            _check_type(chunk, QuarantineRow)
            deduped = _dedupe(chunk, EXTRACTION_KEY)
            params = _json_params(deduped)
            counts += _upsert(
                conn,
                quarantine,
                params,
                EXTRACTION_KEY,
                ("labels", "evidence", "failed_expectations"),
                {"quarantined_at": func.now()},
                clear=extractions,
            )
    return counts


def _upsert_on_key(
    bind: Bind,
    rows: Iterable[R],
    row_type: type[R],
    table: Table,
    key: Sequence[str],
    touch: dict[str, Any],
) -> UpsertCounts:
    """UPSERT ``row_type`` rows on ``key``, updating a row when any other field differs."""
    compare = [c for c in row_type.model_fields if c not in key]
    counts = UpsertCounts()
    with transaction(bind) as conn:
        for chunk in _chunks(rows, CHUNK_SIZE):
            _check_type(chunk, row_type)
            params = _json_params(_dedupe(chunk, key))
            counts += _upsert(conn, table, params, key, compare, touch)
    return counts


def upsert_run_metrics(bind: Bind, rows: Iterable[RunMetricsRow]) -> UpsertCounts:
    """UPSERT task-run metrics on (run_id, task_id, map_index): a retried task overwrites."""
    key = ("run_id", "task_id", "map_index")
    return _upsert_on_key(bind, rows, RunMetricsRow, run_metrics, key, {"recorded_at": func.now()})


def upsert_validation_results(bind: Bind, rows: Iterable[ValidationResultRow]) -> UpsertCounts:
    """UPSERT the index of kept validation results on (run_id, task_id, map_index, suite_name)."""
    key = ("run_id", "task_id", "map_index", "suite_name")
    touch = {"validated_at": func.now()}
    return _upsert_on_key(bind, rows, ValidationResultRow, validation_results, key, touch)


def insert_task_failures(bind: Bind, rows: Iterable[TaskFailureRow]) -> int:
    """Append task-failure records (every failed try is its own row). Returns rows written."""
    n = 0
    with transaction(bind) as conn:
        for chunk in _chunks(rows, CHUNK_SIZE):
            _check_type(chunk, TaskFailureRow)
            conn.execute(task_failures.insert(), _json_params(chunk))
            n += len(chunk)
    return n


def _check_type(chunk: Sequence[object], expected: type[BaseModel]) -> None:
    for row in chunk:
        if not isinstance(row, expected):
            raise TypeError(
                f"expected {expected.__name__} rows, got {type(row).__name__}: build rows with "
                f"extractors.warehouse.rows (reports through extractors.privacy)"
            )
