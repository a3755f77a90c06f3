"""Turn a ``ReportRecord`` (raw ids) into a ``ReportRow`` (pseudonyms only): the one place where
raw identifiers stop. Everything downstream of this function sees keys, never ids."""

from __future__ import annotations

import hashlib

from extractors.privacy.pseudonym import Pseudonymizer
from extractors.privacy.scrub import scrub_identifiers
from extractors.ris.base import ReportRecord
from extractors.warehouse.rows import ReportRow


def content_sha256(text: str) -> str:
    """SHA-256 (hex) of the UTF-8 text: what ``raw.reports.content_sha256`` holds."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pseudonymize_record(record: ReportRecord, pseudonymizer: Pseudonymizer) -> ReportRow:
    """The warehouse row of a record: keyed pseudonyms for patient, accession and report, and
    the text with the record's own ids (and labelled MRN/accession numbers) scrubbed out."""
    text, _ = scrub_identifiers(record.text, (record.patient_id, record.accession_number))
    return ReportRow(
        report_key=pseudonymizer.report_key(record.source, record.accession_number),
        patient_key=pseudonymizer.patient_key(record.patient_id),
        accession_key=pseudonymizer.accession_key(record.accession_number),
        source=record.source,
        modality=record.modality,
        report_type=record.report_type,
        exam_at=record.exam_at,
        report_final_at=record.report_final_at,
        report_text=text,
        content_sha256=content_sha256(text),
        result_status=record.result_status,
        provenance=record.provenance(),
    )
