"""Input readers: every record becomes a report or a precise problem, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors.io import InputError, InputProblem, iter_reports
from extractors.results import ReportInput


def test_jsonl_bad_lines_become_problems_in_order(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"report_id": "a", "text": "No effusion."}).encode(),
        b"{not json",
        json.dumps({"text": "no id"}).encode(),
        json.dumps({"report_id": 7, "text": 12}).encode(),
        b"",
        b'["a list"]',
        json.dumps({"report_id": "b", "text": "Clear \xff lungs."}).encode("utf-8")[:-3]
        + b'\xff"}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    records = list(iter_reports(path))
    assert [type(r).__name__ for r in records] == [
        "ReportInput", "InputProblem", "InputProblem", "InputProblem", "InputProblem", "ReportInput"
    ]  # fmt: skip
    assert isinstance(records[1], InputProblem) and "line 2 is not valid JSON" in records[1].message
    assert isinstance(records[2], InputProblem) and "no 'report_id'" in records[2].message
    assert isinstance(records[3], InputProblem) and records[3].report_id == "7"
    assert isinstance(records[4], InputProblem) and "not a JSON object" in records[4].message
    last = records[5]
    assert isinstance(last, ReportInput) and last.flags == ["invalid_utf8_replaced"]


def test_csv_joins_several_text_columns_as_sections(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "uid,findings,impression,age\n1,Heart normal.,No acute disease.,54\n2,,Normal chest.,60\n",
        encoding="utf-8",
    )
    records = list(iter_reports(path, id_col="uid", text_cols=["findings", "impression"]))
    assert all(isinstance(r, ReportInput) for r in records)
    assert records[0].text == "FINDINGS: Heart normal.\nIMPRESSION: No acute disease."  # type: ignore[union-attr]
    assert records[1].text == "IMPRESSION: Normal chest."  # type: ignore[union-attr]
    assert records[0].meta == {"age": "54"}  # type: ignore[union-attr]


def test_csv_missing_columns_is_a_clear_file_error(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("uid,findings\n1,x\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) impression; it has uid, findings"):
        list(iter_reports(path, id_col="uid", text_cols=["findings", "impression"]))


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        list(iter_reports(tmp_path / "nope.jsonl"))
    odd = tmp_path / "reports.txt"
    odd.write_text("x")
    with pytest.raises(InputError, match="--input-format"):
        list(iter_reports(odd))
