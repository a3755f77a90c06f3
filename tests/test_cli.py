"""`rrief extract`, `rrief schemas` and `rrief datasets` end to end through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from extractors.cli import cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONTRACT_KEYS = {
    "report_id", "schema", "schema_version", "extractor", "status", "labels", "evidence", "error",
}  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_help_everywhere() -> None:
    for args in (
        [], ["extract"], ["evaluate"], ["schemas"], ["schemas", "show"], ["datasets", "export"],
    ):  # fmt: skip
        code, out, _ = run(*args, "--help")
        assert code == 0 and "Usage:" in out


def test_extract_jsonl_contract_and_order(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    reports = [
        {"report_id": "a", "text": "FINDINGS: Small right pleural effusion. No pneumothorax."},
        {"report_id": "b", "text": "IMPRESSION: No acute cardiopulmonary abnormality."},
        {"report_id": "c", "text": "Heart is enlarged. Possible left basilar atelectasis."},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in reports))
    out = tmp_path / "out.jsonl"
    code, _, err = run("extract", "--schema", "cxr", "--input", str(src), "--output", str(out))
    assert code == 0, err
    assert "3 ok, 0 errors" in err
    lines = read_jsonl(out)
    assert [line["report_id"] for line in lines] == ["a", "b", "c"]
    for line in lines:
        assert set(line) >= CONTRACT_KEYS
        assert line["schema"] == "cxr" and line["schema_version"] == 1
        assert line["extractor"] == {"backend": "rules", "version": "cxr-rules-1"}
        assert line["status"] == "ok" and line["error"] is None
    a, b, c = (line["labels"] for line in lines)
    assert a["Pleural Effusion"] == "positive" and a["Pneumothorax"] == "negative"
    assert b["No Finding"] == "positive"
    assert c["Cardiomegaly"] == "positive" and c["Atelectasis"] == "uncertain"
    ev = lines[0]["evidence"]["Pleural Effusion"][0]
    assert reports[0]["text"][ev["start"] : ev["end"]] == ev["text"]


def test_malformed_inputs_become_error_lines_not_drops(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    big = "No pleural effusion. " * 60_000  # ~1.2 MB: processed, not truncated, not a crash
    lines = [
        json.dumps({"report_id": "empty", "text": "   "}).encode(),
        json.dumps({"report_id": "big", "text": big}).encode(),
        os.urandom(300).replace(b"\n", b" "),
        json.dumps({"report_id": "notext"}).encode(),
        json.dumps({"report_id": "ok", "text": "Cardiomegaly."}).encode(),
    ]
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run("extract", "--schema", "cxr", "--input", str(src), "--output", str(out))
    assert code == 0
    result = read_jsonl(out)
    assert len(result) == 5
    by_status = [(r["report_id"], r["status"]) for r in result]
    assert by_status == [
        ("empty", "error"), ("big", "ok"), (None, "error"), ("notext", "error"), ("ok", "ok"),
    ]  # fmt: skip
    assert result[0]["error"] == "empty report text"
    assert "line 3" in result[2]["error"]
    assert "no 'text'" in result[3]["error"]
    assert result[1]["labels"]["Pleural Effusion"] == "negative"
    assert "2 ok, 3 errors" in err


def test_report_over_the_size_limit_is_an_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRIEF_MAX_REPORT_CHARS", "100")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"report_id": "x", "text": "No effusion. " * 20}) + "\n")
    out = tmp_path / "out.jsonl"
    assert run("extract", "--schema", "cxr", "--input", str(src), "--output", str(out))[0] == 0
    (line,) = read_jsonl(out)
    assert line["status"] == "error" and "RRIEF_MAX_REPORT_CHARS" in line["error"]


def test_csv_with_several_text_columns(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("uid,findings,impression\n7,Heart size normal.,Mild pulmonary edema.\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run(
        "extract", "--schema", "cxr", "--input", str(src), "--output", str(out),
        "--id-col", "uid", "--text-col", "findings", "--text-col", "impression",
    )  # fmt: skip
    assert code == 0, err
    (line,) = read_jsonl(out)
    assert line["report_id"] == "7" and line["labels"]["Edema"] == "positive"
    assert line["evidence"]["Edema"][0]["text"] == "Mild pulmonary edema."


def test_missing_columns_is_a_clear_failure_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("uid,findings\n1,x\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run(
        "extract", "--schema", "cxr", "--input", str(src), "--output", str(out),
        "--id-col", "uid", "--text-col", "impression",
    )  # fmt: skip
    assert code == 1
    assert "lacks column(s) impression" in err
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))


def test_schema_without_rules_points_to_llm_backends(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"report_id": "a", "text": "Effusion."}) + "\n")
    schema = Path(__file__).resolve().parents[1] / "examples" / "schemas" / "chestxray14.yaml"
    code, _, err = run(
        "extract", "--schema", str(schema), "--input", str(src), "--output", str(tmp_path / "o")
    )
    assert code == 1 and "no rules exist for schema chestxray14@1" in err and "--backend hf" in err


def test_unknown_schema_and_backend(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    code, _, err = run("extract", "--schema", "knee", "--input", str(src), "--output", "o")
    assert code == 1 and "unknown schema 'knee'" in err
    code, _, err = run(
        "extract", "--schema", "cxr", "--backend", "magic", "--input", str(src), "--output", "o"
    )
    assert code == 1 and "unknown backend 'magic'" in err


def test_schemas_commands() -> None:
    code, out, _ = run("schemas", "list")
    assert code == 0 and "cxr@1" in out and "ccta@1" in out and "mammo@1" in out
    code, out, _ = run("schemas", "json-schema", "ccta")
    assert code == 0 and json.loads(out)["properties"]["stenosis"]["required"][0] == "LM"
    code, out, _ = run("schemas", "show", "cxr")
    assert code == 0 and "not_mentioned" in out and "Semantics" in out


def test_datasets_export_matches_csv_reading(tmp_path: Path) -> None:
    openi = DATA / "cxr_openi" / "reports.csv"
    if not openi.exists():
        pytest.skip(f"shared dev data not found at {openi}")
    out = tmp_path / "openi.jsonl"
    code, _, err = run("datasets", "export", "openi", str(openi), "--output", str(out))
    assert code == 0 and "1000 reports" in err
    first = read_jsonl(out)[0]
    assert first["report_id"] == "4" and first["text"].startswith("FINDINGS: ")


def test_cddcesm_end_to_end_birads(tmp_path: Path) -> None:
    source = DATA / "mammo_cddcesm" / "breast_reports.csv"
    if not source.exists():
        pytest.skip(f"shared dev data not found at {source}")
    inp, pred = tmp_path / "in.jsonl", tmp_path / "pred.jsonl"
    assert run("datasets", "export", "cddcesm", str(source), "--output", str(inp))[0] == 0
    assert run("extract", "--schema", "mammo", "--input", str(inp), "--output", str(pred))[0] == 0
    code, out, _ = run(
        "evaluate", "--schema", "mammo", "--pred", str(pred), "--gold", str(source),
        "--bootstrap", "0", "--out", str(tmp_path / "ev"),  # a prefix: ev.json, ev.csv, ev.txt
    )  # fmt: skip
    assert code == 0 and "birads" in out
    summary = json.loads((tmp_path / "ev.json").read_text())
    tasks = {t["task"]: t for t in summary["sections"][0]["tasks"]}
    assert tasks["birads"]["scored"] == 225
    assert tasks["birads"]["accuracy"]["value"] >= 0.97  # the BI-RADS exact-match target


def test_ccta_fixtures_end_to_end_extract_and_evaluate(tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parent / "fixtures" / "ccta_reports.jsonl"
    pred = tmp_path / "pred.jsonl"
    code, _, err = run(
        "extract", "--schema", "ccta", "--input", str(fixtures), "--output", str(pred)
    )
    assert code == 0, err
    lines = read_jsonl(pred)
    gold = read_jsonl(fixtures)
    assert len(lines) == len(gold) >= 40
    assert all(line["status"] == "ok" for line in lines)
    code, out, _ = run(
        "evaluate", "--schema", "ccta", "--pred", str(pred), "--gold", str(fixtures),
        "--gold-format", "jsonl", "--bootstrap", "0", "--out", str(tmp_path / "ev"),
    )  # fmt: skip
    assert code == 0 and "cad_rads" in out
    summary = json.loads((tmp_path / "ev.json").read_text())
    assert summary["predictions"]["coverage"]["invalid_rate"] == 0.0
    stated = {g["report_id"]: g["labels"]["cad_rads"] for g in gold}
    got = {p["report_id"]: p["labels"]["cad_rads"] for p in lines}
    assert got == stated


def test_llm_backend_options_fall_back_to_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"report_id": "a", "text": "Effusion."}) + "\n")
    monkeypatch.setenv("RRIEF_LLM_ENDPOINT", "http://8.8.8.8:8000/v1")
    monkeypatch.setenv("RRIEF_ADAPTER", "cxr=cxr-v1")
    code, _, err = run(
        "extract", "--schema", "cxr", "--backend", "openai",
        "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
    )  # fmt: skip
    # the endpoint came from RRIEF_LLM_ENDPOINT, and the egress guard refuses it before any request
    assert code == 1 and "8.8.8.8" in err and "RRIEF_LLM_ALLOWED_HOSTS" in err


def test_warehouse_upgrade_and_status(warehouse_url: str) -> None:
    code, out, err = run("warehouse", "status", "--url", warehouse_url)
    assert code == 0, err
    code, out, err = run("warehouse", "upgrade", "--url", warehouse_url)
    assert code == 0, err
    assert "roles and grants applied" in out
    code, out, _ = run("warehouse", "status", "--url", warehouse_url)
    assert code == 0 and "up to date" in out


def test_warehouse_down_is_a_clear_error() -> None:
    code, _, err = run(
        "warehouse", "status", "--url", "postgresql+psycopg://nobody:pw@127.0.0.1:9/none"
    )
    assert code == 1 and "cannot reach the warehouse at" in err and "pw" not in err


def test_a_stray_csv_quote_never_labels_one_report_from_another_patients_text(
    tmp_path: Path,
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        'report_id,text\n1,"Small left pleural effusion.,\n2,No pneumothorax.\n'
        "3,Heart is enlarged.\n4,Possible atelectasis.\n"
    )
    out = tmp_path / "out.jsonl"
    code, _, err = run("extract", "--schema", "cxr", "--input", str(src), "--output", str(out))
    assert code == 0, err
    lines = read_jsonl(out)
    assert [(r["report_id"], r["status"]) for r in lines] == [
        (None, "error"), ("2", "ok"), ("3", "ok"), ("4", "ok")
    ]  # fmt: skip
    assert "input line 2" in lines[0]["error"]
    assert lines[1]["labels"]["Pleural Effusion"] == "not_mentioned"  # not report 1's text
    assert "4 reports -> " in err and "3 ok, 1 errors" in err


def test_duplicate_report_ids_are_counted_in_the_summary(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(json.dumps({"report_id": i, "text": "Normal chest."}) + "\n" for i in "abab")
    )
    out = tmp_path / "out.jsonl"
    code, _, err = run("extract", "--schema", "cxr", "--input", str(src), "--output", str(out))
    assert code == 0, err
    assert "2 repeat an earlier report id (flagged duplicate_report_id)" in err
    dup = ["duplicate_report_id"]
    assert [r["flags"] for r in read_jsonl(out)] == [[], [], dup, dup]


def test_wrong_keys_on_jsonl_fail_before_any_output(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "body": "Normal."}) + "\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run("extract", "--schema", "cxr", "--input", str(src), "--output", str(out))
    assert code == 1 and "has keys id, body" in err and "--id-col" in err
    assert not out.exists()
