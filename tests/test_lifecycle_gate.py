"""The promotion gate: a pure function of the paired comparison rrief evaluate computes."""

from __future__ import annotations

import json
from pathlib import Path

from extractors.evaluate.command import run_evaluation
from extractors.lifecycle.gate import GateMargins, gate, summary_metrics
from tests.tiny_llm import TRAIN_CXR


def row(label: str, metric: str, a: float | None, b: float | None) -> dict[str, object]:
    delta = None if a is None or b is None else a - b
    return {
        "label": label,
        "metric": metric,
        "a": a,
        "b": b,
        "delta": {"value": delta, "ci_low": None, "ci_high": None},
        "p_bootstrap": 0.5,
    }


ROWS = [
    row("Edema", "weighted_f1", 0.80, 0.82),
    row("Pneumothorax", "weighted_f1", 0.90, 0.70),
    row("Fracture", "weighted_f1", float("nan"), 0.5),  # no support in the test split
    row("micro (positive)", "f1", 0.85, 0.84),
    row("macro (positive)", "f1", 0.10, 0.90),  # not a gate criterion
    row("overall", "exact_match", 0.1, 0.9),  # not a gate criterion
]


def test_a_candidate_within_the_margins_passes() -> None:
    result = gate(ROWS, GateMargins(micro_f1_margin=0.0, label_f1_drop=0.05), "production x")
    assert result.passed and result.failures == []
    assert [r.label for r in result.rows] == ["micro (positive)", "Edema", "Pneumothorax", "Fracture"]  # fmt: skip
    assert result.rows[-1].delta is None and result.rows[-1].passed  # undefined never decides
    table = result.table()
    assert "production x" in table.splitlines()[0] and table.endswith("gate PASSED")
    metrics = summary_metrics(result)
    assert metrics["micro_f1"] == 0.85 and metrics["label_f1"]["Edema"] == 0.80


def test_a_label_drop_beyond_the_bound_fails() -> None:
    result = gate(ROWS, GateMargins(micro_f1_margin=0.0, label_f1_drop=0.01))
    assert not result.passed
    assert result.failures == ["Edema weighted_f1 0.800 vs production 0.820 (allowed drop 0.01)"]
    assert "FAIL" in result.table() and "gate FAILED" in result.table()


def test_a_lower_micro_f1_fails_unless_within_the_margin() -> None:
    rows = [row("micro (positive)", "f1", 0.80, 0.84), row("Edema", "weighted_f1", 0.8, 0.8)]
    assert not gate(rows, GateMargins(micro_f1_margin=0.02)).passed
    assert gate(rows, GateMargins(micro_f1_margin=0.05)).passed


def test_an_empty_comparison_fails() -> None:
    assert gate([], GateMargins()).failures[0].startswith("the comparison holds no label scores")


def test_gate_on_a_real_comparison(tmp_path: Path) -> None:
    """Gold as predictions (perfect) against predictions with one label wrong everywhere."""
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    lines = [json.loads(x) for x in TRAIN_CXR.read_text(encoding="utf-8").splitlines() if x]
    with good.open("w") as g, bad.open("w") as b:
        for rec in lines:
            out = {"report_id": rec["report_id"], "status": "ok", "labels": rec["labels"]}
            g.write(json.dumps(out) + "\n")
            wrong = dict(rec["labels"], **{"Support Devices": "uncertain"})
            b.write(json.dumps({**out, "labels": wrong}) + "\n")
    paired = run_evaluation("cxr", bad, TRAIN_CXR, "jsonl", compare_path=good, resamples=200)
    result = gate(paired["comparison"]["rows"], GateMargins(label_f1_drop=0.05))
    assert not result.passed
    assert any(f.startswith("Support Devices weighted_f1") for f in result.failures)
    reverse = run_evaluation("cxr", good, TRAIN_CXR, "jsonl", compare_path=bad, resamples=200)
    assert gate(reverse["comparison"]["rows"], GateMargins()).passed
