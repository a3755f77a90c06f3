"""SQL connector: a table/view or a query over any SQLAlchemy URL, windowed on the
report-final timestamp, half-open ``[start, end)``.

Either name a ``table`` (optionally ``schema.table``) and map the contract fields to its columns,
or give a ``query`` with ``:start`` and ``:end`` parameters that returns columns named like the
``ReportRecord`` fields (``patient_id, accession_number, modality, procedure, exam_at,
report_final_at, text``). Rows stream in chunks; a row with bad or missing values becomes a
``RISRecordError`` (row number and field names, never the values) and the rest goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    column,
    create_engine,
    func,
    null,
    select,
    table,
    text,
)
from sqlalchemy.sql.elements import TextClause

from extractors.ris.base import (
    ReportRecord,
    RISRecordError,
    as_aware,
    check_window,
    make_record,
)
from extractors.ris.mapping import ExamMapper

log = logging.getLogger("rrief.ris.sql")

FIELDS = (
    "patient_id",
    "accession_number",
    "modality",
    "procedure",
    "exam_at",
    "report_final_at",
    "text",
)
REQUIRED = ("patient_id", "accession_number", "report_final_at", "text")


class SqlConnector:
    """Reports from a SQL database (``RISConnector``)."""

    def __init__(
        self,
        url: str | Engine,
        *,
        table_name: str | None = None,
        columns: Mapping[str, str | None] | None = None,
        query: str | None = None,
        source: str = "sql",
        naive_timezone: tzinfo = UTC,
        bind_naive: bool | None = None,
        chunk_size: int = 1000,
        exams: ExamMapper | None = None,
    ) -> None:
        """``naive_timezone``: the zone of timestamps stored without one. ``bind_naive``: pass
        the window as naive timestamps in that zone — needed when the RIS column is a naive
        ``timestamp`` (default: only for SQLite, which stores timestamps as text)."""
        if (table_name is None) == (query is None):
            raise ValueError("give exactly one of table_name or query")
        self.engine = url if isinstance(url, Engine) else create_engine(url)
        self.source = source
        self.naive_timezone = naive_timezone
        self.bind_naive = self.engine.dialect.name == "sqlite" if bind_naive is None else bind_naive
        self.chunk_size = chunk_size
        self.exams = exams or ExamMapper()
        sqlite = self.engine.dialect.name == "sqlite"
        self._statement = (
            _query_statement(query)
            if query is not None
            else _table_statement(table_name, columns, sqlite=sqlite)
        )

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Stream the window's rows as records (ordered by report-final time)."""
        check_window(start, end)
        params = {"start": self._bind(start), "end": self._bind(end)}
        outside = ignored = 0
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.chunk_size).execute(
                self._statement, params
            )
            for number, row in enumerate(result.mappings(), start=1):
                item = self._record(number, row)
                if item is None:
                    ignored += 1
                    continue
                if isinstance(item, ReportRecord) and not start <= item.report_final_at < end:
                    outside += 1  # the query's own WHERE disagrees with the window: skip it
                    continue
                yield item
        if ignored:
            log.info("%s: %d reports ignored by the exam mapping", self.source, ignored)
        if outside:
            log.warning(
                "%s: %d rows outside [%s, %s) were skipped; check the query's window filter",
                self.source,
                outside,
                start.isoformat(),
                end.isoformat(),
            )

    def count(self, start: datetime, end: datetime) -> int:
        """How many rows the window has, counted by the database (no report text is read):
        what the reconciliation compares with the warehouse."""
        check_window(start, end)
        params = {"start": self._bind(start), "end": self._bind(end)}
        if isinstance(self._statement, TextClause):
            statement: Any = text(f"SELECT count(*) FROM ({self._statement.text}) AS rrief_window")
        else:
            statement = select(func.count()).select_from(self._statement.order_by(None).subquery())
        with self.engine.connect() as conn:
            return int(conn.execute(statement, params).scalar_one())

    def _bind(self, value: datetime) -> datetime | str:
        if self.bind_naive:
            return value.astimezone(self.naive_timezone).replace(tzinfo=None).isoformat(sep=" ")
        return value

    def _record(self, number: int, row: Mapping[str, Any]) -> ReportRecord | RISRecordError | None:
        """The record of one row (``None``: the exam mapping says to ignore it)."""
        final = row.get("report_final_at")
        locator = f"row {number} of the window" + (
            f" (report_final_at {final.isoformat() if isinstance(final, datetime) else final})"
            if final is not None
            else ""
        )
        missing = [name for name in REQUIRED if row.get(name) in (None, "")]
        if missing:
            return RISRecordError(
                source=self.source, locator=locator, reason=f"missing {', '.join(missing)}"
            )
        fields: dict[str, Any] = {name: row.get(name) for name in FIELDS}
        for name in ("patient_id", "accession_number"):
            if isinstance(fields[name], int):
                fields[name] = str(fields[name])
        for name in ("exam_at", "report_final_at"):
            value = fields[name]
            if isinstance(value, str):
                try:
                    value = datetime.fromisoformat(value)
                except ValueError:
                    return RISRecordError(
                        source=self.source, locator=locator, reason=f"{name}: not a timestamp"
                    )
            if isinstance(value, datetime):
                fields[name] = as_aware(value, self.naive_timezone)
        decision = self.exams.decide(None, fields.get("procedure"), fields.get("modality"))
        if decision.ignore:
            return None
        if decision.modality is None:
            return RISRecordError(
                source=self.source,
                locator=locator,
                reason="missing modality (and none inferable from the procedure)",
            )
        fields["modality"] = decision.modality
        fields["report_type"] = decision.report_type
        fields["time_source"] = "report_final_at"
        return make_record(self.source, locator, **fields)


def _query_statement(query: str) -> TextClause:
    for name in (":start", ":end"):
        if name not in query:
            raise ValueError(f"the RIS query must filter on the window with {name}")
    return text(query)


def _table_statement(
    name: str | None, columns: Mapping[str, str | None] | None, *, sqlite: bool
) -> Any:
    """SELECT the mapped columns (``None`` = the table lacks it: NULL) in the window.

    SQLite stores timestamps as text in more than one layout, so there both sides are compared
    as ``julianday`` numbers.
    """
    assert name is not None
    mapping: dict[str, str | None] = {field: field for field in FIELDS}
    mapping.update(columns or {})
    unknown = set(mapping) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown record fields in columns: {sorted(unknown)}")
    absent = [f for f in REQUIRED if mapping[f] is None]
    if absent:
        raise ValueError(f"required fields cannot be unmapped: {absent}")
    present = {c for c in mapping.values() if c is not None}
    schema, _, table_only = name.rpartition(".")
    source = table(table_only, *(column(c) for c in sorted(present)), schema=schema or None)
    final = source.c[mapping["report_final_at"]]
    lo, hi = bindparam("start"), bindparam("end")
    window = (
        and_(
            func.julianday(final) >= func.julianday(lo), func.julianday(final) < func.julianday(hi)
        )
        if sqlite
        else and_(final >= lo, final < hi)
    )
    return (
        select(
            *(
                (source.c[src] if src is not None else null()).label(field)
                for field, src in mapping.items()
            )
        )
        .where(window)
        .order_by(final, source.c[mapping["accession_number"]])
    )
