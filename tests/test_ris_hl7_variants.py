"""HL7 v2 feeds as real systems send them: one fixture per variant in tests/fixtures/hl7/variants/."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extractors.ris.base import ReportRecord, RISRecordError
from extractors.ris.hl7v2 import Hl7FolderConnector

VARIANTS = Path(__file__).resolve().parent / "fixtures" / "hl7" / "variants"
DAY = datetime(2025, 2, 10, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)


def fetch_one(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture, **options: object
) -> list[ReportRecord | RISRecordError]:
    """Everything the connector yields for one fixture file dropped at noon on DAY."""
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(VARIANTS / name, folder / name)
    noon = (DAY + timedelta(hours=12)).timestamp()
    os.utime(folder / name, (noon, noon))
    caplog.set_level(logging.DEBUG)
    return list(Hl7FolderConnector(folder, **options).fetch(DAY, NEXT))  # type: ignore[arg-type]


def assert_no_text_logged(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every fixture's report text carries the word MARKER; none may reach a log or stream."""
    out, err = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for where in (logged, out, err):
        assert "MARKER" not in where


def test_each_report_of_a_multi_patient_message_gets_its_own_patient(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    items = fetch_one(tmp_path, "multi_patient.hl7", caplog)
    got = {
        i.accession_number: (i.patient_id, i.text.split()[0])
        for i in items
        if isinstance(i, ReportRecord)
    }
    assert [i for i in items if isinstance(i, RISRecordError)] == []
    assert got == {
        "ACC400001": ("PT300001", "MARKER-P1"),
        "ACC400002": ("PT300002", "MARKER-P2"),
        "ACC400003": ("PT300002", "MARKER-P2B"),
    }
    assert_no_text_logged(caplog, capsys)
