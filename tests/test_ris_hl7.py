"""HL7 v2 connector on the sample drop folder in ``tests/fixtures/hl7/`` (see its README)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extractors.ris.base import ReportRecord, RISConnector, RISRecordError
from extractors.ris.hl7_files import split_file
from extractors.ris.hl7v2 import Hl7FolderConnector

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hl7"
DAY = datetime(2025, 2, 10, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)


@pytest.fixture
def drop_folder(tmp_path: Path) -> Path:
    """A copy of the fixtures whose files were all dropped at noon on DAY."""
    folder = tmp_path / "drop"
    shutil.copytree(FIXTURES, folder)
    noon = (DAY + timedelta(hours=12)).timestamp()
    for path in folder.iterdir():
        os.utime(path, (noon, noon))
    return folder


def test_reports_and_errors_of_the_day(drop_folder: Path) -> None:
    connector = Hl7FolderConnector(drop_folder, source="hl7-test")
    assert isinstance(connector, RISConnector)
    items = list(connector.fetch(DAY, NEXT))
    good = {i.locator: i for i in items if isinstance(i, ReportRecord)}
    bad = {i.locator: i.reason for i in items if isinstance(i, RISRecordError)}

    assert bad == {
        "batch.hl7 message 2 OBR 1": (
            "OBR-25 result status 'P' is preliminary "
            "(kept only with RRIEF_RIS_INCLUDE_PRELIMINARY=true)"
        ),
        "batch.hl7 message 3": "message type ADT^A01 is not ORU^R01",
        "batch.hl7 message 4 OBR 1": (
            "no report text: no TX/FT/ST OBX segment with text after this OBR"
        ),
        "batch.hl7 message 5 OBR 1": (
            "OBR-22 (16 characters) is not an HL7 timestamp (YYYY[MM[DD[HHMM[SS]]]][+ZZZZ])"
        ),
        "batch.hl7 message 6 OBR 1": "PID-3 (patient identifier) is empty",
        "not_hl7.hl7": "no HL7 message (no MSH segment)",
        "truncated.hl7 message 1": "unparseable HL7 message (IndexError)",
    }
    summary = {
        loc: (r.patient_id, r.accession_number, r.modality, r.report_type)
        for loc, r in good.items()
    }
    assert summary == {
        "batch.hl7 message 1 OBR 1": ("PT100003", "ACC200003", "CT", "ccta"),
        "batch.hl7 message 1 OBR 2": ("PT100003", "ACC200004", "DX", "cxr"),
        "cxr_final.hl7 message 1 OBR 1": ("PT100001", "ACC200001", "CR", "cxr"),
        "mammo_ft_crlf.hl7 message 1 OBR 1": ("PT100002", "ACC200002", "MG", "mammo"),
        "missing_final_time.hl7 message 1 OBR 1": ("PT100010", "ACC200010", "CR", "cxr"),
        "mllp_framed.hl7 message 1 OBR 1": ("PT100011", "ACC200011", "CT", "ccta"),
    }
    # OBR-22 and OBX-14 empty: the report time falls back to MSH-7, and says so
    late = good["missing_final_time.hl7 message 1 OBR 1"]
    assert (late.time_source, late.report_final_at) == (
        "MSH-7",
        datetime(2025, 2, 10, 9, tzinfo=UTC),
    )
    assert {r.time_source for loc, r in good.items() if r is not late} == {"OBR-22"}
    cxr = good["cxr_final.hl7 message 1 OBR 1"]
    assert cxr.text == (
        "EXAM: XR CHEST 2 VIEWS\n"
        "FINDINGS: Small left pleural effusion & basilar atelectasis.\n"
        "No pneumothorax.\n"
        "IMPRESSION: Small left effusion."
    )  # the withdrawn (OBX-11 W) segment is left out
    assert cxr.exam_at == datetime(2025, 2, 10, 8, 15, tzinfo=UTC)
    assert cxr.report_final_at == datetime(2025, 2, 10, 8, 30, tzinfo=UTC)
    mammo = good["mammo_ft_crlf.hl7 message 1 OBR 1"]
    assert mammo.text.splitlines() == [
        "BREAST COMPOSITION: Heterogeneously dense.",
        "FINDINGS: No suspicious mass.",
        "IMPRESSION: BI-RADS 1 negative.",
    ]
    assert mammo.report_final_at.utcoffset() == timedelta(hours=-5)
    for err in bad.values():  # errors name fields, never identifiers
        assert "PT1000" not in err and "ACC2000" not in err


def test_window_is_half_open_on_the_report_time(drop_folder: Path) -> None:
    connector = Hl7FolderConnector(drop_folder)
    next_day = list(connector.fetch(NEXT, NEXT + timedelta(days=1)))
    # only the report final on the 11th; file-level errors stay in their file's window
    assert [(type(i).__name__, i.locator) for i in next_day] == [
        ("ReportRecord", "batch.hl7 message 7 OBR 1")
    ]
    morning = [
        i.locator
        for i in connector.fetch(DAY, DAY + timedelta(hours=8, minutes=30))
        if isinstance(i, ReportRecord)
    ]
    assert morning == []  # cxr_final is final at 08:30 exactly: the next window's
    assert "cxr_final.hl7 message 1 OBR 1" in [
        i.locator for i in connector.fetch(DAY + timedelta(hours=8, minutes=30), NEXT)
    ]


def test_split_handles_framing_wrappers_and_line_endings() -> None:
    data = b"\x0bFHS|^~\\&\r\nMSH|^~\\&|A\nPID|1\r\rMSH|^~\\&|B\rOBR|1\r\x1c\r"
    split = split_file(data)
    assert [m.text for m in split.messages] == ["MSH|^~\\&|A\rPID|1", "MSH|^~\\&|B\rOBR|1"]
    assert [m.line for m in split.messages] == [2, 5]  # file lines of the MSH segments
    assert split.problems == []
    leading = split_file(b"PID|1\rMSH|^~\\&|A").problems
    assert leading == [
        (1, "1 line(s) before the first MSH segment belong to no message (first: line 1, 5 bytes)")
    ]


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(Hl7FolderConnector(tmp_path / "nope").fetch(DAY, NEXT))
