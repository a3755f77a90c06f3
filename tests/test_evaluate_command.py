"""The ``evaluate`` click command end to end on small pred/gold files written in tmp_path."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extractors.evaluate.command import evaluate
from extractors.gold import CXR_FINDINGS
from extractors.schemas import get_schema


def _labels(**overrides: str) -> dict[str, str]:
    labels = {name: "not_mentioned" for name in CXR_FINDINGS}
    labels.update({k.replace("_", " "): v for k, v in overrides.items()})
    return labels


def _ok(rid: str, labels: dict[str, Any], schema: str = "cxr") -> dict[str, Any]:
    return {
        "report_id": rid,
        "schema": schema,
        "schema_version": 1,
        "extractor": {"backend": "rules", "version": "test"},
        "status": "ok",
        "labels": labels,
        "evidence": {},
        "error": None,
        "flags": [],
    }


def _err(rid: str) -> dict[str, Any]:
    return {**_ok(rid, {}), "status": "error", "labels": None, "error": "model output was not JSON"}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def cxr_files(tmp_path: Path) -> dict[str, Path]:
    gold = [
        {"report_id": "r1", "text": "t", "labels": _labels(Edema="positive")},
        {"report_id": "r2", "text": "t", "labels": _labels(Edema="negative")},
        {"report_id": "r3", "text": "t", "labels": _labels(Edema="positive")},
        {"report_id": "r4", "text": "t", "labels": _labels(Edema="uncertain")},
    ]
    pred_a = [
        _ok("r1", _labels(Edema="positive")),
        _ok("r2", _labels(Edema="negative")),
        _err("r3"),  # an error line: scored as a miss
        # r4 has no line at all: scored as a miss
        _ok("r9", _labels(Edema="positive")),  # no gold: counted, not scored
    ]
    pred_b = [_ok(r, _labels(Edema="negative")) for r in ("r1", "r2", "r3", "r4")]
    return {
        "gold": _write_jsonl(tmp_path / "gold.jsonl", gold),
        "a": _write_jsonl(tmp_path / "a.jsonl", pred_a),
        "b": _write_jsonl(tmp_path / "b.jsonl", pred_b),
        "dir": tmp_path,
    }


def _run(args: list[str]) -> Any:
    return CliRunner().invoke(evaluate, args, catch_exceptions=False)


def test_help_names_every_option() -> None:
    result = _run(["--help"])
    assert result.exit_code == 0
    options = "--schema --pred --gold --gold-format --compare --uncertain-policy --findings"
    for option in [*options.split(), "--bootstrap", "--seed", "--out"]:
        assert option in result.output
    assert "openi-mesh" in result.output and "misses" in result.output


def test_full_labels_gold_counts_errors_and_missing(cxr_files: dict[str, Path]) -> None:
    out_dir = cxr_files["dir"] / "results"
    result = _run(
        ["--schema", "cxr", "--pred", str(cxr_files["a"]), "--gold", str(cxr_files["gold"]),
         "--bootstrap", "200", "--out", str(out_dir) + "/"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "invalid/error-output rate 50.0%" in result.output
    assert "1 error or invalid lines, 1 missing predictions" in result.output
    assert "1 predictions without gold" in result.output
    assert "Weighted F1 (CheXbert)" in result.output
    data = json.loads((out_dir / "evaluation.json").read_text())
    cov = data["predictions"]["coverage"]
    assert (
        cov["gold_reports"],
        cov["error_or_invalid_predictions"],
        cov["missing_predictions"],
    ) == (
        4,
        1,
        1,
    )
    assert cov["invalid_rate"] == 0.5
    (section,) = data["sections"]
    rows = {(r["task"], r["class"]): r for r in section["classes"]}
    # Edema positive: gold r1, r3; pred positive only on r1 (r3 is an error line): P = 1, R = 1/2
    edema_pos = rows[("Edema", "positive")]
    assert edema_pos["precision"]["value"] == 1.0
    assert edema_pos["recall"]["value"] == 0.5
    assert edema_pos["support"] == 2
    # Edema uncertain: gold r4 has no prediction -> recall 0
    assert rows[("Edema", "uncertain")]["recall"]["value"] == 0.0
    with (out_dir / "evaluation.csv").open() as fh:
        long = list(csv.DictReader(fh))
    assert any(
        r["task"] == "Edema" and r["class"] == "positive" and r["metric"] == "f1" for r in long
    )
    assert (out_dir / "evaluation.txt").read_text().startswith("Schema cxr@1")


def test_compare_adds_paired_tests(cxr_files: dict[str, Path]) -> None:
    prefix = cxr_files["dir"] / "cmp" / "run1"
    result = _run(
        ["--schema", "cxr", "--pred", str(cxr_files["a"]), "--compare", str(cxr_files["b"]),
         "--gold", str(cxr_files["gold"]), "--findings", "Edema,Pneumonia", "--bootstrap", "100",
         "--out", str(prefix)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Comparison" in result.output and "p McNemar" in result.output
    data = json.loads(prefix.with_name("run1.json").read_text())
    rows = {(r["label"], r["metric"]): r for r in data["comparison"]["rows"]}
    edema = rows[("Edema", "weighted_f1")]
    # correct per report, A: r1 yes, r2 yes, r3 no (error), r4 no (missing)
    #                     B: r1 no (negative), r2 yes, r3 no, r4 no (negative vs uncertain)
    # discordant: only A right = 1 (r1), only B right = 0 -> exact p = 2 * (1/2) = 1
    assert (edema["mcnemar_b_only_a_correct"], edema["mcnemar_c_only_b_correct"]) == (1, 0)
    assert edema["mcnemar_method"] == "exact" and edema["p_mcnemar"] == 1.0
    assert edema["p_mcnemar_holm"] == 1.0
    assert 0.0 <= edema["p_bootstrap"] <= 1.0
    assert {s["tasks"][0]["task"] for s in data["sections"]} == {"Edema"}
    assert prefix.with_name("run1.comparison.csv").exists()


OPENI = """uid,MeSH,findings,impression
1,Pulmonary Edema,t,i
2,normal,t,i
3,Pneumonia,t,i
4,No Indexing,t,i
"""


def test_positive_only_gold_reports_both_uncertain_policies(tmp_path: Path) -> None:
    gold = tmp_path / "reports.csv"
    gold.write_text(OPENI)
    pred = _write_jsonl(
        tmp_path / "p.jsonl",
        [
            _ok("1", _labels(Edema="uncertain")),
            _ok("2", _labels(No_Finding="positive", Edema="uncertain")),
            _ok("3", _labels(Pneumonia="positive")),
            _ok("4", _labels()),
        ],
    )
    out = tmp_path / "o"
    result = _run(["--schema", "cxr", "--pred", str(pred), "--gold", str(gold), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "U-ones" in result.output and "U-zeros" in result.output
    assert "1 gold reports skipped" in result.output
    assert "positive-only" in result.output
    data = json.loads(out.with_name("o.json").read_text())
    assert data["gold"]["format"] == "openi-mesh"
    ones, zeros = data["sections"]
    edema_1 = next(r for r in ones["classes"] if r["task"] == "Edema")
    edema_0 = next(r for r in zeros["classes"] if r["task"] == "Edema")
    # uncertain as positive: pred positive on 1 and 2, gold positive on 1 -> P 1/2, R 1
    assert (edema_1["precision"]["value"], edema_1["recall"]["value"]) == (0.5, 1.0)
    # uncertain as negative: no positive prediction -> P undefined, R 0
    assert edema_0["precision"]["value"] is None and edema_0["recall"]["value"] == 0.0


def test_mammography_gold(tmp_path: Path) -> None:
    gold = tmp_path / "breast_reports.csv"
    gold.write_text(
        "patient_id,side,age,dm_findings_text,dm_opinion_text,cesm_text,label_density_acr,"
        "label_birads_dm,label_birads_cesm,label_findings_dm,label_tags_dm,label_pathology\n"
        "1,L,46,distortion.,distortion (birads 4).,x,C,4,4,AD,suspicious,Malignant\n"
        "1,R,46,no mass.,normal (birads 1).,x,_,1,1,Normal,normal,Normal\n"
        "2,R,50,cyst.,benign (birads 2).,x,B,3$2,3,Mass,benign,Benign\n"
    )
    empty = get_schema("mammo").empty_labels()

    def mammo(left: str | None, right: str | None, density: str | None) -> dict[str, Any]:
        return {**empty, "birads": {"left": left, "right": right}, "density": density}

    pred = _write_jsonl(
        tmp_path / "m.jsonl",
        [
            _ok("1L", mammo("4B", None, "c"), "mammo"),  # exact wrong, category right
            _ok("1R", mammo(None, "1", "b"), "mammo"),  # right; density unlabelled
            _ok("2R", mammo(None, "2", "b"), "mammo"),  # wrong (gold: highest of 3$2 = 3)
        ],
    )
    out = tmp_path / "m"
    result = _run(["--schema", "mammo", "--pred", str(pred), "--gold", str(gold), "--out", str(out),
                   "--bootstrap", "50"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.with_name("m.json").read_text())
    tasks = {t["task"]: t for t in data["sections"][0]["tasks"]}
    assert tasks["birads"]["accuracy"]["value"] == pytest.approx(1 / 3)
    assert tasks["birads_category"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert tasks["density"]["scored"] == 2
    assert tasks["density"]["accuracy"]["value"] == 1.0


def test_bad_inputs_give_precise_errors(cxr_files: dict[str, Path], tmp_path: Path) -> None:
    wrong = _write_jsonl(tmp_path / "w.jsonl", [_ok("r1", {}, "mammo")])
    result = _run(["--schema", "cxr", "--pred", str(wrong), "--gold", str(cxr_files["gold"])])
    assert result.exit_code == 1 and "schema 'mammo', not 'cxr'" in result.output
    dup = _write_jsonl(tmp_path / "d.jsonl", [_ok("r1", _labels()), _ok("r1", _labels())])
    result = _run(["--schema", "cxr", "--pred", str(dup), "--gold", str(cxr_files["gold"])])
    assert result.exit_code == 1 and "line 2: its report_id appears twice" in result.output
    assert "r1" not in result.output  # line numbers, never report ids
    gold = str(cxr_files["gold"])
    result = _run(["--schema", "cxr", "--pred", str(cxr_files["a"]), "--gold", gold,
                   "--findings", "Hernia"])  # fmt: skip
    assert result.exit_code == 1 and "'Hernia' not scored" in result.output
    result = _run(
        [
            "--schema",
            "cxr",
            "--pred",
            str(tmp_path / "nope.jsonl"),
            "--gold",
            str(cxr_files["gold"]),
        ]
    )
    assert result.exit_code == 1 and "does not exist" in result.output


def test_invalid_labels_count_as_errors(cxr_files: dict[str, Path], tmp_path: Path) -> None:
    pred = _write_jsonl(
        tmp_path / "p.jsonl",
        [_ok("r1", _labels(Edema="likely")), _ok("r2", _labels()), _ok("r3", _labels()),
         _ok("r4", _labels())],
    )  # fmt: skip
    with (tmp_path / "p.jsonl").open("a") as fh:
        fh.write("{not json\n")
    result = _run(
        [
            "--schema",
            "cxr",
            "--pred",
            str(pred),
            "--gold",
            str(cxr_files["gold"]),
            "--bootstrap",
            "0",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "invalid/error-output rate 25.0%" in result.output
    assert "1 unreadable prediction lines" in result.output


def test_generic_schema_ccta_per_key_nullable_and_list_fields(tmp_path: Path) -> None:
    schema = get_schema("ccta")
    empty = schema.empty_labels()

    def ccta(cad: str | None, lad: str, mods: list[str]) -> dict[str, Any]:
        return {**empty, "cad_rads": cad, "modifiers": mods,
                "stenosis": {**empty["stenosis"], "LAD": lad}}  # fmt: skip

    gold_rows = [
        {"report_id": "c1", "text": "t", "labels": ccta("4A", "70-99", ["S"])},
        {"report_id": "c2", "text": "t", "labels": ccta("2", "25-49", [])},
        {"report_id": "c3", "text": "t", "labels": ccta(None, "0", [])},
    ]
    gold = _write_jsonl(tmp_path / "g.jsonl", gold_rows)
    pred = _write_jsonl(
        tmp_path / "p.jsonl",
        [
            _ok("c1", ccta("4A", "70-99", ["S"]), "ccta"),
            _ok("c2", ccta("3", "50-69", ["S"]), "ccta"),
            _ok("c3", ccta(None, "0", []), "ccta"),
        ],
    )
    out = tmp_path / "c"
    result = _run(["--schema", "ccta", "--pred", str(pred), "--gold", str(gold), "--out", str(out),
                   "--bootstrap", "50"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.with_name("c.json").read_text())
    tasks = {t["task"]: t for s in data["sections"] for t in s["tasks"]}
    assert tasks["cad_rads"]["accuracy"]["value"] == pytest.approx(2 / 3)  # c2 wrong; null == null
    assert tasks["stenosis.LAD"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert tasks["stenosis.RCA"]["accuracy"]["value"] == 1.0  # not_mentioned everywhere
    classes = {(r["task"], r["class"]): r for s in data["sections"] for r in s["classes"]}
    # modifiers[S]: gold present on c1; predicted on c1 and c2 -> P 1/2, R 1
    stent = classes[("modifiers[S]", "present")]
    assert (stent["precision"]["value"], stent["recall"]["value"]) == (0.5, 1.0)
    assert classes[("cad_rads", "null")]["support"] == 1
    # a field name in --findings selects all its keys
    result = _run(["--schema", "ccta", "--pred", str(pred), "--gold", str(gold),
                   "--findings", "stenosis", "--bootstrap", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stenosis.LAD" in result.output and "cad_rads" not in result.output


def test_compare_without_bootstrap_still_runs_mcnemar(cxr_files: dict[str, Path]) -> None:
    prefix = cxr_files["dir"] / "nb"
    result = _run(
        ["--schema", "cxr", "--pred", str(cxr_files["a"]), "--compare", str(cxr_files["b"]),
         "--gold", str(cxr_files["gold"]), "--bootstrap", "0", "--out", str(prefix)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(prefix.with_name("nb.json").read_text())["comparison"]["rows"]
    edema = next(r for r in rows if r["label"] == "Edema")
    assert edema["p_bootstrap"] is None and edema["delta"]["ci_low"] is None
    assert edema["p_mcnemar"] == 1.0


def test_deep_nesting_in_predictions_is_one_unreadable_line(
    cxr_files: dict[str, Path], tmp_path: Path
) -> None:
    rows = [_ok(r, _labels()) for r in ("r1", "r2", "r3", "r4")]
    pred = _write_jsonl(tmp_path / "p.jsonl", rows)
    with pred.open("a") as fh:
        fh.write('{"report_id": "r5", "labels": ' + "[" * 5000 + "]" * 5000 + "}\n")
    gold = str(cxr_files["gold"])
    result = _run(["--schema", "cxr", "--pred", str(pred), "--gold", gold, "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "1 unreadable prediction lines" in result.output
    assert "invalid/error-output rate 0.0%" in result.output  # the 4 gold reports still score


def test_deep_nesting_in_gold_names_the_line(cxr_files: dict[str, Path], tmp_path: Path) -> None:
    gold = tmp_path / "g.jsonl"
    gold.write_text(cxr_files["gold"].read_text() + "[" * 5000 + "]" * 5000 + "\n")
    result = _run(["--schema", "cxr", "--pred", str(cxr_files["a"]), "--gold", str(gold)])
    assert result.exit_code == 1
    assert "line 5: JSON nested too deeply to read" in result.output


def test_no_shared_report_ids_is_an_error_not_f1_zero(
    cxr_files: dict[str, Path], tmp_path: Path
) -> None:
    other = _write_jsonl(tmp_path / "o.jsonl", [_ok(f"x{i}", _labels()) for i in range(3)])
    gold = str(cxr_files["gold"])
    result = _run(["--schema", "cxr", "--pred", str(other), "--gold", gold])
    assert result.exit_code == 1
    assert "none of the 4 gold report ids appears among the 3 report ids" in result.output
    result = _run(
        ["--schema", "cxr", "--pred", str(cxr_files["a"]), "--gold", gold, "--compare", str(other)]
    )
    assert result.exit_code == 1 and "none of the 4 gold report ids" in result.output
