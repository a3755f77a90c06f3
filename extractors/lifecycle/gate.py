"""The promotion gate: may a candidate adapter replace the current extractor of its schema?

A pure function of the paired comparison that ``rrief evaluate --compare`` computes on the
frozen test split (:func:`extractors.evaluate.command.run_evaluation`, candidate = system A,
the current extractor = system B: the production adapter, or the rules when there is none).
The candidate passes when

- every micro-averaged F1 (per class, over the schema's labels; for cxr the positive, negative
  and uncertain classes) is not worse than the current extractor's by more than
  ``micro_f1_margin``, and
- no label's primary score (the CheXbert-style weighted F1 for four-state findings, the F1 or
  accuracy the evaluation compares for other fields) drops by more than ``label_f1_drop``.

Undefined scores (no gold support in the test split) are shown and never decide. The result
carries a plain-text table for the task log and the ``ops.alerts`` row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RowKind = Literal["micro", "label"]


class GateMargins(BaseModel):
    """How much worse than the current extractor a candidate may be (``RRIEF_GATE_*``)."""

    model_config = ConfigDict(frozen=True)

    micro_f1_margin: float = Field(default=0.0, ge=0.0, le=1.0)
    label_f1_drop: float = Field(default=0.05, ge=0.0, le=1.0)


class GateRow(BaseModel):
    kind: RowKind
    label: str
    metric: str
    candidate: float | None
    current: float | None
    rules: float | None = None
    delta: float | None
    delta_ci: tuple[float | None, float | None] = (None, None)
    p_bootstrap: float | None = None
    passed: bool
    bound: float


class GateResult(BaseModel):
    passed: bool
    current: str = Field(description="what the candidate was compared with")
    rows: list[GateRow]
    failures: list[str]

    def table(self) -> str:
        """The comparison as a fixed-width table (log, alert details, docs)."""
        head = ["", "label", "metric", "candidate", self.current, "rules", "delta [95% CI]", "p"]
        body = [
            [
                "ok" if r.passed else "FAIL",
                r.label,
                r.metric,
                _f(r.candidate),
                _f(r.current),
                _f(r.rules),
                f"{_f(r.delta, signed=True)} [{_f(r.delta_ci[0], True)}, {_f(r.delta_ci[1], True)}]",
                _f(r.p_bootstrap),
            ]
            for r in self.rows
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *body]
        ]
        verdict = "PASSED" if self.passed else "FAILED: " + "; ".join(self.failures)
        return "\n".join([*lines, f"gate {verdict}"])


def _f(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _num(x: Any) -> float | None:
    if not isinstance(x, int | float) or isinstance(x, bool) or math.isnan(x):
        return None
    return float(x)


def _kind(row: Mapping[str, Any]) -> RowKind | None:
    label = str(row.get("label", ""))
    if label == "overall" or label.startswith(("macro (", "weighted (")):
        return None
    if label.startswith("micro ("):
        return "micro" if row.get("metric") == "f1" else None
    return "label"  # a label's primary score (the only per-label row a comparison holds)


def gate(
    comparison_rows: Sequence[Mapping[str, Any]],
    margins: GateMargins,
    current: str = "production",
    rules_scores: Mapping[tuple[str, str], float | None] | None = None,
) -> GateResult:
    """Decide from the ``comparison.rows`` of a candidate-vs-current evaluation (see the module
    docstring). ``rules_scores`` ((label, metric) -> the rules' score) adds a column for
    reading; it never decides."""
    rows: list[GateRow] = []
    failures: list[str] = []
    for raw in comparison_rows:
        kind = _kind(raw)
        if kind is None:
            continue
        cand, cur = _num(raw.get("a")), _num(raw.get("b"))
        delta_raw = raw.get("delta") or {}
        delta = _num(delta_raw.get("value")) if cand is not None and cur is not None else None
        bound = margins.micro_f1_margin if kind == "micro" else margins.label_f1_drop
        passed = delta is None or delta >= -bound - 1e-12
        label, metric = str(raw["label"]), str(raw["metric"])
        if not passed:
            what = f"{label} F1" if kind == "micro" else f"{label} {metric}"
            failures.append(f"{what} {cand:.3f} vs {current} {cur:.3f} (allowed drop {bound:g})")
        rows.append(
            GateRow(
                kind=kind,
                label=label,
                metric=metric,
                candidate=cand,
                current=cur,
                rules=(rules_scores or {}).get((label, metric)),
                delta=delta,
                delta_ci=(_num(delta_raw.get("ci_low")), _num(delta_raw.get("ci_high"))),
                p_bootstrap=_num(raw.get("p_bootstrap")),
                passed=passed,
                bound=bound,
            )
        )
    if not rows:
        failures.append("the comparison holds no label scores (empty test split?)")
    rows.sort(key=lambda r: (r.kind != "micro",))
    return GateResult(passed=not failures, current=current, rows=rows, failures=failures)


def summary_metrics(result: GateResult) -> dict[str, Any]:
    """The candidate's scores as stored in ``ops.adapters.metrics``."""
    micro = {
        r.label.removeprefix("micro (").rstrip(")"): r.candidate
        for r in result.rows
        if r.kind == "micro"
    }
    labels = {r.label: r.candidate for r in result.rows if r.kind == "label"}
    first = next(iter(micro.values()), None)
    return {"micro_f1": first, "micro_f1_by_class": micro, "label_f1": labels}
