"""A demo RIS: a SQLite file with a ``report_feed`` table, read by the SQL connector.

It plays the hospital's reporting database: raw patient ids and accession numbers, procedure
names and timestamps (UTC, stored without zone as many RIS databases do). Some reports repeat
their accession number in a header line, as dictation templates often do, so the demo shows
identifiers being scrubbed from text as well as pseudonymized.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Column, DateTime, MetaData, Table, Text, create_engine

from extractors.demo.reports import DemoReport

RIS_TABLE = "report_feed"

_metadata = MetaData()
report_feed = Table(
    RIS_TABLE,
    _metadata,
    Column("accession_number", Text, primary_key=True),
    Column("patient_id", Text, nullable=False),
    Column("modality", Text, nullable=False),
    Column("procedure", Text),
    Column("exam_at", DateTime),
    Column("report_final_at", DateTime, nullable=False),
    Column("text", Text, nullable=False),
)


def _with_header(report: DemoReport, rng: random.Random) -> str:
    if rng.random() < 0.3:
        return f"ACCESSION: {report.accession_number}\n{report.text}"
    return report.text


def seed_ris(path: Path | str, reports: Iterable[DemoReport], seed: int = 11) -> int:
    """(Re)create the RIS file at ``path`` with ``reports``; returns how many rows it holds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    rng = random.Random(seed)
    return _write(path, [feed_row(r, _with_header(r, rng)) for r in reports])


def _write(path: Path | str, rows: list[dict[str, object]]) -> int:
    """Insert ``rows`` into the RIS file's ``report_feed`` (created when missing)."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        _metadata.create_all(engine)
        with engine.begin() as conn:
            if rows:
                conn.execute(report_feed.insert(), rows)
    finally:
        engine.dispose()
    return len(rows)


def feed_row(report: DemoReport, text: str | None = None) -> dict[str, object]:
    """The ``report_feed`` row of a report (timestamps naive UTC, as the table stores them)."""
    return {
        "accession_number": report.accession_number,
        "patient_id": report.patient_id,
        "modality": report.modality,
        "procedure": report.procedure,
        "exam_at": report.exam_at.replace(tzinfo=None),
        "report_final_at": report.report_final_at.replace(tzinfo=None),
        "text": report.text if text is None else text,
    }


def add_reports(path: Path | str, reports: Iterable[DemoReport]) -> int:
    """Append ``reports`` to an existing RIS file (reports that arrive late); returns how many."""
    return _write(path, [feed_row(r) for r in reports])


def ris_url(path: Path | str) -> str:
    """The SQLAlchemy URL of a demo RIS file (what ``RRIEF_RIS_URL`` is set to)."""
    return f"sqlite:///{Path(path).resolve()}"
