"""HL7 v2 feeds as real systems send them: one fixture per variant in tests/fixtures/hl7/variants/.

Every report text in these fixtures contains the word MARKER; each test also checks that none of
it reached a log record, stdout or stderr.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extractors.ris.base import ReportRecord, RISRecordError
from extractors.ris.hl7_text import Delimiters, unescape
from extractors.ris.hl7v2 import Hl7FolderConnector
from extractors.ris.mapping import ExamMapper, UnmappedExam
from extractors.ris.status import StatusVocabulary

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VARIANTS = FIXTURES / "hl7" / "variants"
DAY = datetime(2025, 2, 10, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)

Items = list[ReportRecord | RISRecordError]


pytestmark = pytest.mark.usefixtures("no_report_text_logged")


def fetch(tmp_path: Path, name: str, **options: object) -> Items:
    """Everything the connector yields for one fixture file dropped at noon on DAY."""
    folder = tmp_path / "drop"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(VARIANTS / name, folder / name)
    noon = (DAY + timedelta(hours=12)).timestamp()
    os.utime(folder / name, (noon, noon))
    return list(Hl7FolderConnector(folder, **options).fetch(DAY, NEXT))  # type: ignore[arg-type]


def records(items: Items) -> dict[str, ReportRecord]:
    return {i.accession_number: i for i in items if isinstance(i, ReportRecord)}


def errors(items: Items) -> dict[str, str]:
    return {i.locator: i.reason for i in items if isinstance(i, RISRecordError)}


def test_each_report_of_a_multi_patient_message_gets_its_own_patient(tmp_path: Path) -> None:
    items = fetch(tmp_path, "multi_patient.hl7")
    got = {acc: (r.patient_id, r.text.split()[0]) for acc, r in records(items).items()}
    assert errors(items) == {}
    assert got == {
        "ACC400001": ("PT300001", "MARKER-P1"),
        "ACC400002": ("PT300002", "MARKER-P2"),
        "ACC400003": ("PT300002", "MARKER-P2B"),
    }


def test_result_status_vocabulary_and_obx11_fallback(tmp_path: Path) -> None:
    items = fetch(tmp_path, "result_status.hl7")
    got = {acc: r.result_status for acc, r in records(items).items()}
    assert got == {
        "ACC500001": "final",  # OBR-25 empty, both OBX-11 F
        "ACC500003": "final",  # OBR-25 FINAL
        "ACC500008": "corrected",  # OBX-11 F and C: as final as its least final part
    }
    assert errors(items) == {
        "result_status.hl7 message 2 OBR 1": (
            "OBX-11 (OBX 1) result status 'P' is preliminary "
            "(kept only with RRIEF_RIS_INCLUDE_PRELIMINARY=true)"
        ),
        "result_status.hl7 message 4 OBR 1": (
            "OBR-25 result status 'WET READ' is preliminary "
            "(kept only with RRIEF_RIS_INCLUDE_PRELIMINARY=true)"
        ),
        "result_status.hl7 message 5 OBR 1": (
            "OBR-25 result status (1 characters) is not final, corrected or preliminary "
            "(RRIEF_RIS_FINAL_STATUSES, _CORRECTED_STATUSES, _PRELIMINARY_STATUSES)"
        ),
        "result_status.hl7 message 6 OBR 1": (  # free text is described, never quoted
            "OBR-25 result status (13 characters) is not final, corrected or preliminary "
            "(RRIEF_RIS_FINAL_STATUSES, _CORRECTED_STATUSES, _PRELIMINARY_STATUSES)"
        ),
        "result_status.hl7 message 7 OBR 1": "no result status: OBR-25 and OBX-11 are empty",
    }


def test_preliminary_reports_are_kept_only_when_configured(tmp_path: Path) -> None:
    vocabulary = StatusVocabulary.from_settings_values(
        final="F,FINAL", corrected="C", preliminary="P, wet  read,Q", include_preliminary=True
    )
    items = fetch(tmp_path, "result_status.hl7", statuses=vocabulary)
    got = {acc: r.result_status for acc, r in records(items).items()}
    assert got == {
        "ACC500001": "final",
        "ACC500002": "preliminary",
        "ACC500003": "final",
        "ACC500004": "preliminary",  # "WET READ" matches " wet  read" (case, blanks)
        "ACC500005": "preliminary",  # Q is configured here
        "ACC500008": "corrected",
    }
    assert set(errors(items)) == {
        "result_status.hl7 message 6 OBR 1",
        "result_status.hl7 message 7 OBR 1",
    }


def test_status_vocabulary_refuses_a_code_of_two_kinds() -> None:
    with pytest.raises(ValueError, match="'P' is listed as final and prelim"):
        StatusVocabulary.from_settings_values(final="F,P", preliminary="P")


def test_oru_without_trigger_event_is_oru_r01(tmp_path: Path) -> None:
    items = fetch(tmp_path, "oru_without_trigger.hl7")
    (record,) = items
    assert isinstance(record, ReportRecord)
    assert (record.accession_number, record.modality, record.report_type) == (
        "ACC500101",
        "MG",
        "mammo",
    )
    assert record.text == "MARKER BI-RADS 1."


def test_each_message_is_read_in_its_own_character_set(tmp_path: Path) -> None:
    items = fetch(tmp_path, "charsets.hl7")
    got = records(items)
    assert errors(items) == {}
    assert got["ACC500201"].text == "MARKER Résumé: lésion pulmonaire."  # MSH-18 8859/1
    assert got["ACC500201"].flags == ()
    # no MSH-18 and not UTF-8: decoded with replacement characters and flagged, not lost
    assert got["ACC500202"].text == "MARKER R\ufffdsum\ufffd replaced."
    assert got["ACC500202"].flags == ("invalid_bytes_replaced",)
    assert got["ACC500203"].text == "MARKER Ünïcode ok."  # MSH-18 UNICODE UTF-8
    # the default encoding setting reads the undeclared message right
    fixed = records(fetch(tmp_path / "cp1252", "charsets.hl7", encoding="cp1252"))
    assert fixed["ACC500202"].text == "MARKER Résumé replaced."
    assert fixed["ACC500202"].flags == ()


def test_a_byte_order_mark_is_not_content(tmp_path: Path) -> None:
    (record,) = fetch(tmp_path, "bom.hl7")
    assert isinstance(record, ReportRecord)
    assert record.text == "MARKER after a BOM."


def test_report_time_falls_back_and_says_from_where(tmp_path: Path) -> None:
    items = fetch(tmp_path, "report_time_fallback.hl7")
    got = {
        acc: (r.report_final_at, r.time_source, r.report_final_precision)
        for acc, r in records(items).items()
    }
    assert got == {
        "ACC500401": (datetime(2025, 2, 10, 10, 30, tzinfo=UTC), "OBX-14", "second"),
        "ACC500402": (datetime(2025, 2, 10, 11, tzinfo=UTC), "MSH-7", "second"),
        "ACC500404": (DAY, "OBR-22", "day"),  # a bare date: kept, with its precision
    }
    partial = records(items)["ACC500404"]
    assert (partial.exam_at, partial.exam_precision) == (datetime(2025, 2, 1, tzinfo=UTC), "month")
    assert errors(items) == {
        "report_time_fallback.hl7 message 3 OBR 1": (
            "no report time: OBR-22, OBX-14 and MSH-7 are all empty"
        )
    }


def test_backslashes_that_start_no_escape_stay_in_the_text(tmp_path: Path) -> None:
    (record,) = fetch(tmp_path, "backslashes.hl7")
    assert isinstance(record, ReportRecord)
    assert record.text.split("\n") == [
        "MARKER Disc L4\\5 narrowed; 50\\50 chance; C:\\temp path.",
        "IMPRESSION: effusion & atelectasis | pipe \\ escape A hex.",  # \H\..\N\ dropped
        "Line one",  # FT \.br\ is a line break, \.sp\ a blank line
        "Line two",
        "",
        "Paragraph.",
        "Unknown \\Q\\ stays; trailing \\",
    ]


def test_unescape_with_other_delimiters() -> None:
    delims = Delimiters.from_msh("MSH#*+!@#RIS")
    assert (delims.field, delims.component, delims.repetition, delims.escape) == tuple("#*+!")
    assert unescape("a!F!b!S!c!X4142!d 4!5", delims) == "a#b*cABd 4!5"
    assert unescape("no \\F\\ escapes", Delimiters.from_msh("MSH|^~")) == "no \\F\\ escapes"


def test_python_hl7_logs_no_field_content(caplog: pytest.LogCaptureFixture) -> None:
    """python-hl7's own unescape logs the whole field at ERROR; after our module is imported
    its records say only that something was withheld."""
    import hl7

    import extractors.ris.hl7v2  # noqa: F401  (installs the filter)

    message = hl7.parse("MSH|^~\\&|A|B\rOBX|1|TX|X||MARKER 50\\50 odds, 20\\30 vision")
    assert message.unescape("MARKER 50\\50 odds, 20\\30 vision") == "MARKER 5030 vision"
    python_hl7 = [r for r in caplog.records if "hl7" in r.pathname.replace("\\", "/")]
    assert python_hl7, "python-hl7 logged nothing: the check below would prove nothing"
    assert all(r.levelno == logging.DEBUG and "withheld" in r.getMessage() for r in python_hl7)


def test_blank_text_lines_keep_the_paragraphs(tmp_path: Path) -> None:
    (record,) = fetch(tmp_path, "blank_lines.hl7")
    assert isinstance(record, ReportRecord)
    assert record.text == "MARKER FINDINGS: Clear lungs.\nNo effusion.\n\nIMPRESSION: Normal."


def test_technologist_comments_are_left_out_by_setting(tmp_path: Path) -> None:
    (record,) = fetch(tmp_path, "tech_comments.hl7")
    assert isinstance(record, ReportRecord)
    assert record.text == "MARKER FINDINGS: Clear lungs.\nMARKER IMPRESSION: Normal."
    (everything,) = fetch(tmp_path / "all", "tech_comments.hl7", exclude_obx_codes="")
    assert isinstance(everything, ReportRecord)
    assert "MARKER-TECH Patient could not stand." in everything.text.split("\n")
    assert len(everything.text.split("\n")) == 4
    (other,) = fetch(tmp_path / "imp", "tech_comments.hl7", exclude_obx_codes="TCM, IMP")
    assert isinstance(other, ReportRecord)
    assert other.text == "MARKER FINDINGS: Clear lungs."


def test_a_stray_line_is_an_error_naming_it_and_the_other_messages_load(tmp_path: Path) -> None:
    items = fetch(tmp_path, "stray_line.hl7")
    assert sorted(records(items)) == ["ACC500801", "ACC500803"]
    stray = len(b"continues here in the same field.||||||F")
    assert errors(items) == {
        "stray_line.hl7 message 2 line 9": (
            f"line 9 ({stray} bytes) is not an HL7 segment, so message 2 is not loaded "
            "(a line break inside a field?)"
        )
    }


def test_site_exam_mapping_over_the_builtins(tmp_path: Path) -> None:
    exams = ExamMapper.from_file(FIXTURES / "exam_map.yaml")
    items = fetch(tmp_path, "local_exam_codes.hl7", exams=exams)
    got = {acc: (r.modality, r.report_type) for acc, r in records(items).items()}
    assert got == {
        "ACC500901": ("CT", None),  # CTABD: site rule 1
        "ACC500902": ("MG", "mammo"),  # BED: site rule 2
        # ACC500903 PETCT: ignored by site rule 3, neither a record nor an error
        "ACC500904": ("DX", None),  # XR Thoracic Spine: a spine film, not a chest film
        "ACC500905": ("DX", "cxr"),  # not in the file: built-in patterns
    }
    assert errors(items) == {
        "local_exam_codes.hl7 message 6 OBR 1": (
            "no modality: no exam mapping rule, OBR-24 is not a DICOM code and OBR-4 names none"
        )
    }
    assert exams.ignored == {"site rule 3": 1}
    assert exams.unmapped == {
        UnmappedExam("71046", "XR CHEST PA AND LATERAL", "cxr"): 1,
        UnmappedExam("OFR", "OUTSIDE FILM REVIEW", "no modality"): 1,
    }


def test_builtins_alone_no_longer_call_a_thoracic_spine_a_chest_film(tmp_path: Path) -> None:
    exams = ExamMapper()  # no site file
    items = fetch(tmp_path, "local_exam_codes.hl7", exams=exams)
    got = {acc: (r.modality, r.report_type) for acc, r in records(items).items()}
    assert got == {
        "ACC500901": ("CT", None),  # "CT ABDOMEN PELVIS": CT from the name
        "ACC500903": ("PT", None),  # "PETCT AC+NAC ABDOMEN" is a PET exam now
        "ACC500904": ("DX", None),  # "XR Thoracic Spine 1 View": DX, and not cxr
        "ACC500905": ("DX", "cxr"),
    }
    assert sorted(errors(items)) == [  # BED and OFR say nothing about their modality
        "local_exam_codes.hl7 message 2 OBR 1",
        "local_exam_codes.hl7 message 6 OBR 1",
    ]
    assert exams.unmapped[UnmappedExam("BED", "BREAST EXAM DIAGNOSTIC", "no modality")] == 1
    assert sum(exams.unmapped.values()) == 6 and exams.ignored == {}


def test_exam_mapping_file_errors_name_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "map.yaml"
    bad.write_text(
        "exams:\n  - code: X\n    report_type: cxr\n  - modality: CT\n    report_type: none\n"
    )
    with pytest.raises(ValueError, match=r"map.yaml: exams.1: Value error, a rule needs a code"):
        ExamMapper.from_file(bad)
    bad.write_text("exams:\n  - pattern: '(('\n    report_type: none\n")
    with pytest.raises(ValueError, match=r"exams.0.pattern: Value error, not a regular expression"):
        ExamMapper.from_file(bad)
    bad.write_text("exams: [\n")
    with pytest.raises(ValueError, match="not valid YAML at line"):
        ExamMapper.from_file(bad)
    with pytest.raises(ValueError, match="cannot be read"):
        ExamMapper.from_file(tmp_path / "missing.yaml")


def test_odd_structures_and_character_sets_cost_only_their_own_message(tmp_path: Path) -> None:
    msh = "MSH|^~\\&|RIS|H|RRIEF|R|20250210090000||ORU^R01|{}|P|2.5.1||||||{}"  # MSH-18
    pid = "PID|1||PT50100{}^^^H^MR"
    obr = "OBR|1|O|ACC50100{}^RIS|71046^XR CHEST 2 VIEWS|||20250210080000" + "|" * 15
    obr += "20250210090000||CR|F"
    obx = "OBX|1|TX|GDT||MARKER {}||||||F"
    messages = [
        [msh.format("O1", ""), pid.format(1), obx.format("orphan"), obr.format(1), obx.format(1)],
        [msh.format("O2", "KLINGON-8"), pid.format(2), obr.format(2), obx.format(2)],
        [msh.format("O3", "UNICODE UTF-16"), pid.format(3), obr.format(3), obx.format(3)],
        [msh.format("O4", ""), obr.format(4), obx.format(4)],  # no PID at all
    ]
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "odd.hl7").write_bytes("\r".join("\r".join(m) for m in messages).encode())
    noon = (DAY + timedelta(hours=12)).timestamp()
    os.utime(folder / "odd.hl7", (noon, noon))
    items = list(Hl7FolderConnector(folder).fetch(DAY, NEXT))
    got = records(items)
    assert sorted(got) == ["ACC501001", "ACC501002"]
    assert got["ACC501001"].text == "MARKER 1"  # the orphan OBX is not part of the report
    assert got["ACC501002"].flags == ("charset_unknown",)
    assert errors(items) == {
        "odd.hl7 message 1 segment 3": "OBX segment 3 follows no OBR of its patient (1 such)",
        "odd.hl7 message 3": (
            "MSH-18 character set UNICODE UTF-16 cannot be read from bytes; send UTF-8"
        ),
        "odd.hl7 message 4 OBR 1": "no PID segment before this OBR",
    }
