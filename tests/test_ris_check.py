"""``rrief ris check``: a dry run over real stand-ins (a drop folder, a FHIR server, SQLite)
that writes nothing and never prints report text (unless --show-text, on a real terminal)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from extractors.cli import cli
from extractors.ris.check import fold_reason
from tests.test_ris_fhir import RESOURCES, FhirServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DAY = datetime(2025, 2, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check reads RRIEF_RIS_* like the pipeline: none may leak in from the environment."""
    for name in list(os.environ):
        if name.startswith("RRIEF_RIS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """The HL7 variant fixtures (report texts contain MARKER) dropped at noon on DAY."""
    folder = tmp_path / "inbox"
    shutil.copytree(FIXTURES / "hl7" / "variants", folder)
    noon = (DAY + timedelta(hours=12)).timestamp()
    for path in folder.iterdir():
        os.utime(path, (noon, noon))
    return folder


def snapshot(folder: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run(args: list[str], cwd: Path) -> tuple[int, str, str]:
    runner = CliRunner()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(cli, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def test_help() -> None:
    result = CliRunner().invoke(cli, ["ris", "check", "--help"])
    assert result.exit_code == 0
    for option in ("--kind", "--start", "--end", "--show", "--show-text", "--exam-map", "--json"):
        assert option in result.output


def test_hl7_folder_dry_run_counts_and_writes_nothing(drop: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = snapshot(drop)
    args = ["ris", "check", "--kind", "hl7v2", "--folder", str(drop), "--start", "2025-02-10"]
    code, out, err = run(
        [*args, "--exam-map", str(FIXTURES / "exam_map.yaml"), "--no-progress"], cwd
    )
    assert code == 0, err
    assert snapshot(drop) == before and list(cwd.iterdir()) == []  # nothing written anywhere
    assert "MARKER" not in out + err
    lines = out.splitlines()
    assert lines[0].startswith("hl7v2 feed 'ris', window [2025-02-10T00:00:00+00:00, 2025-02-11")
    assert "records: 23 would be loaded, 8 errors" in lines
    assert "report time from: OBR-22 21, MSH-7 1, OBX-14 1" in lines
    assert "flags: invalid_bytes_replaced 1" in lines
    assert "ignored by the mapping: site rule 3 1" in lines
    assert any("OFR" in line and "no modality" in line for line in lines)
    assert (
        "       1  line N (N bytes) is not an HL7 segment, so message N is not loaded "
        "(a line break inside a field?)  (first: stray_line.hl7 message 2 line 9)"
    ) in lines
    first = lines.index("first 5 records:")
    backslashes = "\n".join(
        [
            "MARKER Disc L4\\5 narrowed; 50\\50 chance; C:\\temp path.",
            "IMPRESSION: effusion & atelectasis | pipe \\ escape A hex.",
            "Line one\nLine two\n\nParagraph.",
            "Unknown \\Q\\ stays; trailing \\",
        ]
    )
    assert lines[first + 2].split() == [
        *("cxr", "CR", "final", str(len(backslashes)), "OBR-22"),
        *["backslashes.hl7", "message", "1", "OBR", "1"],
    ]


def test_json_summary(drop: Path, tmp_path: Path) -> None:
    code, out, err = run(
        [
            *("ris", "check", "--kind", "hl7v2", "--folder", str(drop)),
            *("--start", "2025-02-10T00:00", "--end", "2025-02-11T00:00+00:00", "--json"),
            *("--include-preliminary", "--show", "2", "--no-progress"),
        ],
        tmp_path,
    )
    assert code == 0, err
    summary = json.loads(out)
    assert "MARKER" not in out
    assert summary["by_status"] == {"final": 22, "preliminary": 2, "corrected": 1}
    assert [r["locator"] for r in summary["records"]] == [
        "backslashes.hl7 message 1 OBR 1",
        "blank_lines.hl7 message 1 OBR 1",
    ]
    assert summary["records"][1]["chars"] == len(
        "MARKER FINDINGS: Clear lungs.\nNo effusion.\n\nIMPRESSION: Normal."
    )
    unmapped = {(u["code"], u["outcome"]): u["count"] for u in summary["unmapped_exams"]}
    assert unmapped[("BED", "no modality")] == 1 and summary["mapping_file"] == ""


def test_show_text_is_refused_unless_stdout_is_a_terminal(drop: Path, tmp_path: Path) -> None:
    args = ["ris", "check", "--kind", "hl7v2", "--folder", str(drop), "--start", "2025-02-10"]
    result = CliRunner().invoke(cli, [*args, "--show-text"])
    assert result.exit_code == 2
    assert "only to a terminal" in result.output and "MARKER" not in result.output


def test_show_text_on_a_real_terminal(drop: Path) -> None:
    """A pseudo-terminal is a terminal: there, and only there, the text is shown."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRIEF_RIS_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "extractors.cli",
            "ris",
            "check",
            "--kind",
            "hl7v2",
            "--folder",
            str(drop),
            "--start",
            "2025-02-10",
            "--show",
            "1",
            "--show-text",
            "--no-progress",
        ],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout=60) == 0
    shown = b"".join(chunks).decode()
    assert "| MARKER Disc L4\\5 narrowed" in shown


def test_fhir_server_dry_run(tmp_path: Path) -> None:
    server = FhirServer(RESOURCES)
    server.thread.start()
    try:
        code, out, err = run(
            [
                "ris",
                "check",
                "--kind",
                "fhir",
                "--url",
                server.url,
                "--start",
                "2025-02-10",
                "--json",
                "--no-progress",
            ],
            tmp_path,
        )
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["parsed"], summary["errors"]) == (7, 5)
    assert summary["by_time_source"] == {"issued": 6, "meta.lastUpdated": 1}
    assert summary["by_id_source"] == {"identifier[ACSN]": 6, "id": 1}
    assert server.requests and all(r.startswith("/fhir/DiagnosticReport") for r in server.requests)


def test_sql_dry_run_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "ris.sqlite"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE report_feed (patient_id text, accession_number text, "
                "modality text, procedure text, exam_at text, report_final_at text, text text)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO report_feed VALUES ('P1', 'A1', 'CR', 'XR CHEST', NULL, "
                "'2025-02-10 08:00:00', 'MARKER clear lungs'), ('P2', 'A2', NULL, 'ODD EXAM', "
                "NULL, '2025-02-10 09:00:00', 'MARKER odd')"
            )
        )
    engine.dispose()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    code, out, err = run(
        [
            "ris",
            "check",
            "--kind",
            "sql",
            "--url",
            f"sqlite:///{db}",
            "--start",
            "2025-02-10",
            "--no-progress",
        ],
        tmp_path,
    )
    assert code == 0, err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert "records: 1 would be loaded, 1 errors" in out.splitlines()
    assert "MARKER" not in out + err


def test_bad_settings_are_clear_errors(tmp_path: Path) -> None:
    code, _out, err = run(["ris", "check", "--kind", "hl7v2", "--start", "2025-02-10"], tmp_path)
    assert code == 1 and "RRIEF_RIS_FOLDER is empty" in err
    code, _out, err = run(["ris", "check", "--kind", "hl7v2", "--start", "10/02/2025"], tmp_path)
    assert code == 2 and "not an ISO date" in err


def test_error_reasons_fold_positions_and_lengths_only() -> None:
    assert fold_reason("line 9 (40 bytes) is not an HL7 segment, so message 2 is not loaded") == (
        "line N (N bytes) is not an HL7 segment, so message N is not loaded"
    )
    assert fold_reason("OBX-11 (OBX 3) result status (5 characters)") == (
        "OBX-11 (OBX N) result status (N characters)"
    )
