"""Reports for the annotation tests: the demo's synthetic reports, pseudonymized and loaded into
a real warehouse, plus helpers to make accounts and to change a report's text."""

from __future__ import annotations

from sqlalchemy import Engine, text

from extractors.annotate.auth import hash_password
from extractors.demo.reports import generate_reports
from extractors.gold import annotations as store
from extractors.privacy import DEMO_PSEUDONYM_KEY, Pseudonymizer, pseudonymize_record
from extractors.privacy.records import content_sha256
from extractors.ris.base import ReportRecord
from extractors.warehouse import load
from extractors.warehouse.rows import ReportRow

PASSWORD = "correct horse battery"


def demo_rows(days: int = 2, per_day: int = 60) -> list[ReportRow]:
    """The demo's reports (cxr, mammo, ccta) as warehouse rows."""
    pseudo = Pseudonymizer(DEMO_PSEUDONYM_KEY)
    rows = []
    for r in generate_reports(days=days, per_day=per_day):
        record = ReportRecord(
            source="demo-ris",
            patient_id=r.patient_id,
            accession_number=r.accession_number,
            modality=r.modality,
            procedure=r.procedure,
            report_type=r.report_type,
            exam_at=r.exam_at,
            report_final_at=r.report_final_at,
            text=r.text,
        )
        rows.append(pseudonymize_record(record, pseudo))
    return rows


def load_demo_reports(engine: Engine, days: int = 2, per_day: int = 60) -> list[ReportRow]:
    rows = demo_rows(days, per_day)
    load.upsert_reports(engine, rows)
    return rows


def add_user(engine: Engine, username: str, adjudicator: bool = False) -> store.Annotator:
    return store.add_annotator(engine, username, hash_password(PASSWORD), adjudicator=adjudicator)


def change_report_text(engine: Engine, report_key: str, new_text: str) -> None:
    """What a corrected report (an addendum) does to raw.reports: new text, new hash."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE raw.reports SET report_text = :t, content_sha256 = :h, updated_at = now() "
                "WHERE report_key = :k"
            ),
            {"t": new_text, "h": content_sha256(new_text), "k": report_key},
        )
