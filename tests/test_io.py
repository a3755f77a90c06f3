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


# --- CSV read strictly: a stray quote never merges rows ------------------------------------------
def test_a_stray_quote_is_an_error_line_and_the_rows_it_would_swallow_are_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        'report_id,text\n1,"Small effusion.,\n2,No effusion.\n3,Cardiomegaly.\n4,Normal chest.\n'
    )
    records = list(iter_reports(path))
    assert [type(r).__name__ for r in records] == [
        "InputProblem", "ReportInput", "ReportInput", "ReportInput"
    ]  # fmt: skip
    problem = records[0]
    assert isinstance(problem, InputProblem) and problem.line == 2
    assert "input line 2: a quoted field opened on this line is never closed" in problem.message
    assert "effusion" not in problem.message.lower()
    assert [(r.report_id, r.text) for r in records[1:]] == [  # type: ignore[union-attr]
        ("2", "No effusion."), ("3", "Cardiomegaly."), ("4", "Normal chest.")
    ]  # fmt: skip


def test_a_quote_closed_on_a_later_row_is_caught_by_strict_parsing(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('report_id,text\n1,"Small effusion.\n2,"No effusion."\n3,Normal.\n')
    records = list(iter_reports(path))
    assert isinstance(records[0], InputProblem) and records[0].line == 2
    assert "not valid CSV" in records[0].message
    assert [(r.report_id, r.text) for r in records[1:]] == [  # type: ignore[union-attr]
        ("2", "No effusion."), ("3", "Normal.")
    ]  # fmt: skip


def test_wrong_field_counts_are_error_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("report_id,text,age\n1,Normal.,54\n2,Effusion, small.,60\n3,Edema.\n")
    records = list(iter_reports(path))
    assert isinstance(records[0], ReportInput)
    assert isinstance(records[1], InputProblem) and "has 4 fields, the header has 3" in (
        records[1].message
    )
    assert isinstance(records[2], InputProblem) and records[2].line == 4


def test_quoted_multi_line_fields_are_kept_and_lines_counted(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(
        b'\xef\xbb\xbfreport_id,text\r\n1,"FINDINGS: Small effusion.\r\n\r\nIMPRESSION: '
        b'Effusion, small."\r\n\r\n2,Normal.\r\n3,"Heart ""enlarged""."\r\n'
    )
    records = list(iter_reports(path))
    assert all(isinstance(r, ReportInput) for r in records)
    assert [r.text for r in records] == [  # type: ignore[union-attr]
        "FINDINGS: Small effusion.\n\nIMPRESSION: Effusion, small.", "Normal.", 'Heart "enlarged".'
    ]  # fmt: skip


def test_csv_nul_and_bad_bytes_are_flagged_on_their_row(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"report_id,text\n1,Clear\x00lungs.\n2,Normal.\n3,Caf\xe9 lungs.\n")
    records = list(iter_reports(path))
    assert [r.flags for r in records] == [  # type: ignore[union-attr]
        ["nul_bytes_replaced"], [], ["invalid_utf8_replaced"]
    ]  # fmt: skip
    assert records[0].text == "Clear lungs."  # type: ignore[union-attr]


def test_a_headerless_csv_error_never_shows_its_first_row(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("1234567,Patient John Doe MRN 1234567: small left pleural effusion.\n")
    with pytest.raises(InputError) as err:
        list(iter_reports(path))
    message = str(err.value)
    assert "lacks column(s) report_id, text" in message
    assert "2 fields do not look like column names" in message
    assert "John" not in message and "1234567" not in message


# --- JSONL: nesting, ids, escapes, keys --------------------------------------------------------
def test_deeply_nested_json_is_an_error_line_and_the_run_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    deep = '{"report_id": "d", "text": "x", "extra": ' + "[" * 5000 + "]" * 5000 + "}"
    path.write_text(
        json.dumps({"report_id": "a", "text": "Normal."}) + "\n" + deep + "\n"
        + "[" * 100_000 + "\n" + json.dumps({"report_id": "b", "text": "Edema."}) + "\n"
    )  # fmt: skip
    records = list(iter_reports(path))
    assert [type(r).__name__ for r in records] == [
        "ReportInput", "InputProblem", "InputProblem", "ReportInput"
    ]  # fmt: skip
    assert "input line 2 is JSON nested too deeply to read" in records[1].message  # type: ignore[union-attr]
    assert records[3].report_id == "b"  # type: ignore[union-attr]


def test_ids_that_are_lists_objects_or_booleans_are_error_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    ids: list[object] = [["a", "b"], {"mrn": "123"}, True, 7, 1.5]
    path.write_text("".join(json.dumps({"report_id": i, "text": "Normal."}) + "\n" for i in ids))
    records = list(iter_reports(path))
    messages = [r.message if isinstance(r, InputProblem) else r.report_id for r in records]
    assert messages == [
        "input line 1: 'report_id' must be a string or a number, not an array",
        "input line 2: 'report_id' must be a string or a number, not an object",
        "input line 3: 'report_id' must be a string or a number, not true/false",
        "7",
        "1.5",
    ]


def test_escaped_nul_and_lone_surrogates_are_replaced_and_flagged(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"report_id": "a", "text": "Clear\\u0000lungs."}\n'
        '{"report_id": "b\\ud800", "text": "Edema \\udc00here."}\n'
    )
    a, b = iter_reports(path)
    assert isinstance(a, ReportInput) and a.text == "Clear lungs."
    assert a.flags == ["nul_bytes_replaced"]
    assert isinstance(b, ReportInput) and b.report_id == "b\ufffd" and b.text == "Edema \ufffdhere."
    assert b.flags == ["invalid_unicode_replaced"]
    b.model_dump_json()  # writable as UTF-8


def test_duplicate_ids_are_flagged_and_warned_by_line_not_by_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "in.jsonl"
    rows = [("MRN-4711", "Normal."), ("x", "Edema."), ("MRN-4711", "Effusion.")]
    path.write_text("".join(json.dumps({"report_id": i, "text": t}) + "\n" for i, t in rows))
    with caplog.at_level("WARNING", logger="rrief"):
        records = list(iter_reports(path))
    assert [r.flags for r in records] == [[], [], ["duplicate_report_id"]]  # type: ignore[union-attr]
    assert "input line 3 repeats the report_id of input line 1" in caplog.text
    assert "4711" not in caplog.text


def test_wrong_keys_on_jsonl_are_the_same_clear_error_as_on_csv(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(json.dumps({"uid": str(i), "body": "Normal."}) + "\n" for i in range(3))
    )
    with pytest.raises(InputError) as err:
        list(iter_reports(path))
    assert "no line of" in str(err.value) and "(report_id, text)" in str(err.value)
    assert "line 1) has keys uid, body" in str(err.value) and "--id-col" in str(err.value)
    # the right keys: every line reads
    assert all(isinstance(r, ReportInput) for r in iter_reports(path, "auto", "uid", ["body"]))
    # a file where only some lines lack a key keeps them as error lines, in order
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"report_id": "a"}\n{"report_id": "b", "text": "Edema."}\n')
    first, second = iter_reports(mixed)
    assert isinstance(first, InputProblem) and "has no 'text'" in first.message
    assert isinstance(second, ReportInput)
