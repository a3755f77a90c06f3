"""FHIR R4 DiagnosticReports as official examples and real servers send them
(tests/fixtures/fhir/). Every report text there contains MARKER; no log or stream may."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extractors.ris.base import ReportRecord, RISRecordError
from extractors.ris.fhir import FhirBundleConnector, parse_diagnostic_report
from extractors.ris.mapping import ExamMapper

FHIR = Path(__file__).resolve().parent / "fixtures" / "fhir"
DAY = datetime(2025, 2, 10, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)

Items = list[ReportRecord | RISRecordError]


pytestmark = pytest.mark.usefixtures("no_report_text_logged")


def fetch(tmp_path: Path, name: str, **options: object) -> dict[str, ReportRecord | str]:
    """Resource id → its record, or the error reason, for one fixture dropped at noon on DAY."""
    folder = tmp_path / "bundles"
    folder.mkdir(parents=True)
    shutil.copy(FHIR / name, folder / name)
    noon = (DAY + timedelta(hours=12)).timestamp()
    os.utime(folder / name, (noon, noon))
    items = FhirBundleConnector(folder, **options).fetch(DAY, NEXT)  # type: ignore[arg-type]
    return {
        i.locator.split("DiagnosticReport/")[-1]: (i if isinstance(i, ReportRecord) else i.reason)
        for i in items
    }


def test_a_report_without_identifier_is_keyed_on_its_resource_id(tmp_path: Path) -> None:
    got = fetch(tmp_path, "no_identifier.json")
    record = got["ultrasound"]
    assert isinstance(record, ReportRecord)
    assert (record.accession_number, record.id_source) == ("ultrasound", "id")
    assert (record.patient_id, record.modality, record.report_type) == ("example", "US", None)
    assert (record.text, record.text_source) == ("MARKER Unremarkable study.", "conclusion")
    assert record.report_final_at == datetime(2025, 2, 10, 9, tzinfo=UTC)


def test_accession_prefers_acsn_from_basedon_over_an_untyped_report_number(
    tmp_path: Path,
) -> None:
    got = fetch(tmp_path, "based_on.json")
    first, second, third = got["dr-600001"], got["dr-600002"], got["dr-600003"]
    assert isinstance(first, ReportRecord) and isinstance(second, ReportRecord)
    assert isinstance(third, ReportRecord)
    # the ServiceRequest is a urn:uuid entry of the same Bundle
    assert (first.accession_number, first.id_source) == ("ACC-600001", "basedOn identifier[ACSN]")
    # a logical reference carries the identifier itself
    assert (second.accession_number, second.id_source) == (
        "ACC-600002",
        "basedOn identifier[ACSN]",
    )
    # basedOn points outside the Bundle and there is no identifier: the resource id
    assert (third.accession_number, third.id_source) == ("dr-600003", "id")


def test_text_from_html_xhtml_wrapped_base64_and_the_narrative(tmp_path: Path) -> None:
    got = fetch(tmp_path, "text_renditions.json")
    html = got["html"]
    assert isinstance(html, ReportRecord)
    assert html.text == (
        "CT CHEST\n\n"
        "MARKER FINDINGS: A 4 mm nodule in the right upper lobe.\n"
        "No effusion & no adenopathy.\n\n"
        "IMPRESSION: Small nodule."
    )  # title and style skipped; the PDF and the conclusion not used
    assert html.text_source == "presentedForm text/html"
    xhtml = got["xhtml"]
    assert isinstance(xhtml, ReportRecord)
    assert xhtml.text == "MARKER XHTML finding.\n\none\n\ntwo"
    assert xhtml.text_source == "presentedForm application/xhtml+xml"
    wrapped = got["wrapped"]
    assert isinstance(wrapped, ReportRecord)
    assert wrapped.text == "MARKER Wrapped base64 survives: " + "clear lungs, " * 20 + "end."
    narrative = got["narrative"]
    assert isinstance(narrative, ReportRecord)
    assert (narrative.text, narrative.text_source) == (
        "MARKER Narrative only.\n\nSecond paragraph.",
        "text.div",
    )
    # the full report is only behind a url: the impression alone would be half a report
    assert got["url-only"] == (
        "presentedForm[0] (text/html) refers to a url; only inline data is read"
    )


def test_subject_references_absolute_urn_uuid_and_contained(tmp_path: Path) -> None:
    got = fetch(tmp_path, "subjects.json")
    patients = {rid: r.patient_id for rid, r in got.items() if isinstance(r, ReportRecord)}
    assert patients == {
        "absolute": "pt-600200",  # https://.../Patient/pt-600200/_history/3
        "urn": "MRN-600201",  # the Bundle's Patient: its MR identifier, not the first one
        "contained": "MRN-600203",
    }
    assert {rid: r for rid, r in got.items() if isinstance(r, str)} == {
        "urn-no-id": "subject Bundle entry has no identifier",
        "urn-missing": "subject reference names no Bundle entry",
        "contained-no-identifier": "subject #contained Patient has no identifier",
        "group": "subject reference is not a Patient (Patient/id, URL, urn:uuid: or #contained)",
    }


def test_partial_dates_are_kept_with_their_precision(tmp_path: Path) -> None:
    got = fetch(tmp_path, "partial_dates.json")
    month = got["month"]
    assert isinstance(month, ReportRecord)
    assert (month.exam_at, month.exam_precision) == (datetime(2025, 2, 1, tzinfo=UTC), "month")
    assert (month.report_final_at, month.report_final_precision) == (DAY, "day")
    no_issued = got["no-issued"]
    assert isinstance(no_issued, ReportRecord)
    assert (no_issued.time_source, no_issued.report_final_at) == (
        "effectivePeriod.start",
        datetime(2025, 2, 10, 6, tzinfo=UTC),
    )
    unreadable_exam = got["bad-effective"]
    assert isinstance(unreadable_exam, ReportRecord)  # an optional time never refuses
    assert (unreadable_exam.exam_at, unreadable_exam.flags) == (None, ("exam_time_unreadable",))
    assert got["bad-issued"] == "issued (9 characters) is not a FHIR dateTime"


def test_preliminary_reports_only_when_configured() -> None:
    resource = json.loads((FHIR / "no_identifier.json").read_text()) | {"status": "preliminary"}
    refused = parse_diagnostic_report(resource, "fhir")
    assert isinstance(refused, RISRecordError)
    assert refused.reason == (
        "status 'preliminary' is preliminary (kept only with RRIEF_RIS_INCLUDE_PRELIMINARY=true)"
    )
    kept = parse_diagnostic_report(resource, "fhir", include_preliminary=True)
    assert isinstance(kept, ReportRecord) and kept.result_status == "preliminary"
    amended = parse_diagnostic_report(resource | {"status": "amended"}, "fhir")
    assert isinstance(amended, ReportRecord) and amended.result_status == "corrected"
    odd = parse_diagnostic_report(resource | {"status": "MARKER signed"}, "fhir")
    assert isinstance(odd, RISRecordError)
    assert odd.reason == "status (13 characters) is not a FHIR DiagnosticReport status"


def test_exam_mapping_codes_and_ignore(tmp_path: Path) -> None:
    rules = tmp_path / "map.yaml"
    rules.write_text(
        "exams:\n"
        "  - code: 45036003\n    modality: US\n    report_type: ignore\n"
        "  - pattern: 'CHEST PA$'\n    report_type: none\n"
    )
    exams = ExamMapper.from_file(rules)
    assert fetch(tmp_path / "a", "no_identifier.json", exams=exams) == {}  # ignored by code
    got = fetch(tmp_path / "b", "text_renditions.json", exams=exams)
    assert {rid: r.report_type for rid, r in got.items() if isinstance(r, ReportRecord)} == {
        "html": None,  # CT chest: no schema from the built-ins
        "xhtml": None,  # site rule 2 (a cxr by the built-ins)
        "wrapped": None,
        "narrative": None,
    }
    assert exams.ignored == {"site rule 1": 1}


def test_fields_of_the_wrong_json_type_are_errors_not_crashes(tmp_path: Path) -> None:
    """Each resource gets an error naming the field; the good one next to them still loads."""
    good = json.loads((FHIR / "no_identifier.json").read_text())
    odd = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "XR CHEST"}}
    resources = [
        odd | {"id": "a", "issued": 12345, "subject": "Patient/1", "conclusion": "MARKER a"},
        odd
        | {"id": "b", "issued": "2025-02-10", "subject": {"reference": "Patient/1"}}
        | {"presentedForm": [{"contentType": "text/plain", "data": 7}]},
        odd
        | {"id": "c", "issued": "2025-02-10", "category": "x", "meta": "y", "basedOn": "z"}
        | {"subject": {"reference": "Patient/1"}, "conclusion": ["MARKER c"]},
        odd | {"id": "d", "issued": "2025-02-10", "code": ["MARKER"], "subject": []},
        good,
    ]
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "odd.json").write_text(
        json.dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]})
    )
    noon = (DAY + timedelta(hours=12)).timestamp()  # "a" has no readable time: file time
    os.utime(folder / "odd.json", (noon, noon))
    items = list(FhirBundleConnector(folder).fetch(DAY, NEXT))
    got = {
        i.locator.split("/")[-1]: (i.reason if isinstance(i, RISRecordError) else "ok")
        for i in items
    }
    assert got == {
        "a": "issued is not a FHIR dateTime (a JSON int)",
        "b": "presentedForm[0].data is not valid base64",
        "c": "no report text: no text presentedForm, conclusion or narrative",
        "d": "no modality: no exam mapping rule, no DICOM coding, none inferable from code",
        "ultrasound": "ok",
    }
