"""SQL connector against real stand-ins: a Postgres ``ris`` schema and a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text

from extractors.ris.base import ReportRecord, RISConnector, RISRecordError
from extractors.ris.sql import SqlConnector

DAY = datetime(2025, 2, 10, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)

# (patient, accession, modality, procedure, final_at, text); None = SQL NULL
ROWS = [
    ("P1001", "A5001", "CR", "XR CHEST PA", DAY - timedelta(seconds=1), "before the window"),
    ("P1001", "A5002", "CR", "XR CHEST PA", DAY, "FINDINGS: Clear lungs."),
    ("P1002", "A5003", "MG", "MAMMO SCREENING BILAT", DAY + timedelta(hours=3), "BI-RADS 1."),
    ("P1003", "A5004", "CT", "CTA CORONARY ARTERIES", DAY + timedelta(hours=5), "CAD-RADS 2."),
    ("P1004", "A5005", None, "XR CHEST PORTABLE", DAY + timedelta(hours=6), "Line in place."),
    ("P1005", "A5006", "CR", "XR CHEST PA", DAY + timedelta(hours=7), None),  # no text
    ("", "A5007", "CR", "XR CHEST PA", DAY + timedelta(hours=8), "No patient id."),
    ("P1006", "A5008", None, "OUTSIDE FILM REVIEW", DAY + timedelta(hours=9), "Unknown exam."),
    ("P1007", "A5009", "DX", "XR CHEST PA", DAY + timedelta(hours=10), "   \n  "),  # blank
    ("P1008", "A5010", "CR", "XR KNEE 3 VIEWS", NEXT - timedelta(milliseconds=1), "Knee ok."),
    ("P1008", "A5011", "CR", "XR CHEST PA", NEXT, "at the end: next window"),
]


def seed(engine: Engine, schema: str | None, aware: bool) -> None:
    prefix = f"{schema}." if schema else ""
    ts = "timestamptz" if aware else "timestamp"
    with engine.begin() as conn:
        if schema:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(
            text(
                f"CREATE TABLE {prefix}radiology_reports (mrn text, acc_no text, modality text, "
                f"proc_name text, exam_ts {ts}, signed_ts {ts}, body text)"
            )
        )
        for patient, acc, modality, proc, final, body in ROWS:
            value = final if aware else final.replace(tzinfo=None).isoformat(sep=" ")
            conn.execute(
                text(
                    f"INSERT INTO {prefix}radiology_reports VALUES "
                    "(:p, :a, :m, :proc, :exam, :final, :body)"
                ),
                {
                    "p": patient,
                    "a": acc,
                    "m": modality,
                    "proc": proc,
                    "exam": value,
                    "final": value,
                    "body": body,
                },
            )


COLUMNS = {
    "patient_id": "mrn",
    "accession_number": "acc_no",
    "procedure": "proc_name",
    "exam_at": "exam_ts",
    "report_final_at": "signed_ts",
    "text": "body",
}


@pytest.fixture(scope="module")
def ris_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    seed(engine, "ris", aware=True)
    yield engine
    engine.dispose()


def check_day(items: list[ReportRecord | RISRecordError]) -> None:
    good = [i for i in items if isinstance(i, ReportRecord)]
    bad = [i for i in items if isinstance(i, RISRecordError)]
    assert [r.accession_number for r in good] == ["A5002", "A5003", "A5004", "A5005", "A5010"]
    assert [(r.modality, r.report_type) for r in good] == [
        ("CR", "cxr"),
        ("MG", "mammo"),
        ("CT", "ccta"),
        ("DX", "cxr"),  # modality inferred from the procedure name
        ("CR", None),  # a knee radiograph: kept, but no schema applies
    ]
    assert good[0].report_final_at == DAY  # the window start is inside
    assert all(r.report_final_at.tzinfo is not None for r in good)
    assert [e.reason for e in bad] == [
        "missing text",
        "missing patient_id",
        "missing modality (and none inferable from the procedure)",
        "text: String should have at least 1 character",
    ]
    assert bad[0].locator.startswith("row 5 of the window (report_final_at 2025-02-10")
    for err in bad:  # no values, only field names
        assert "P100" not in str(err) and "A50" not in str(err)


def test_postgres_ris_schema_window_is_half_open(ris_engine: Engine) -> None:
    connector = SqlConnector(
        ris_engine, table_name="ris.radiology_reports", columns=COLUMNS, source="ris-pg"
    )
    assert isinstance(connector, RISConnector)
    items = list(connector.fetch(DAY, NEXT))
    check_day(items)
    assert {i.source for i in items} == {"ris-pg"}
    after = [r for r in connector.fetch(NEXT, NEXT + timedelta(days=1))]
    assert [r.accession_number for r in after if isinstance(r, ReportRecord)] == ["A5011"]


def test_custom_query_with_window_parameters(ris_engine: Engine) -> None:
    query = (
        "SELECT mrn AS patient_id, acc_no AS accession_number, modality, proc_name AS procedure, "
        "exam_ts AS exam_at, signed_ts AS report_final_at, body AS text "
        "FROM ris.radiology_reports WHERE signed_ts >= :start AND signed_ts < :end "
        "AND modality = 'MG'"
    )
    items = list(SqlConnector(ris_engine, query=query, source="ris-pg").fetch(DAY, NEXT))
    assert [(i.accession_number, i.report_type) for i in items] == [("A5003", "mammo")]


def test_sqlite_file_with_naive_local_timestamps(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ris.sqlite'}")
    seed(engine, None, aware=False)
    # The file stores naive UTC wall-clock times; read them in a UTC+1 zone to see the shift.
    utc = SqlConnector(engine, table_name="radiology_reports", columns=COLUMNS, source="ris-lite")
    check_day(list(utc.fetch(DAY, NEXT)))
    paris = SqlConnector(
        engine,
        table_name="radiology_reports",
        columns=COLUMNS,
        naive_timezone=ZoneInfo("Europe/Paris"),
    )
    items = [i for i in paris.fetch(DAY, NEXT) if isinstance(i, ReportRecord)]
    # stored 00:00..23:59 "Paris" = 23:00 the day before .. 22:59 UTC: A5002 at 00:00 stored
    # is 23:00Z on the previous day, so the UTC day now starts one hour later in the file
    assert [r.accession_number for r in items][:1] == ["A5003"]
    assert items[0].report_final_at.utcoffset() == timedelta(hours=1)
    engine.dispose()


def test_configuration_errors_are_precise(ris_engine: Engine) -> None:
    with pytest.raises(ValueError, match=":start"):
        SqlConnector(ris_engine, query="SELECT * FROM ris.radiology_reports")
    with pytest.raises(ValueError, match="exactly one"):
        SqlConnector(ris_engine)
    with pytest.raises(ValueError, match="unknown record fields"):
        SqlConnector(ris_engine, table_name="t", columns={"mrn": "x"})
    connector = SqlConnector(ris_engine, table_name="ris.radiology_reports", columns=COLUMNS)
    with pytest.raises(ValueError, match="no timezone"):
        list(connector.fetch(DAY.replace(tzinfo=None), NEXT))
    with pytest.raises(ValueError, match="empty window"):
        list(connector.fetch(NEXT, DAY))
