"""Turn evaluation results into a paper-style terminal table, a long-format CSV and JSON.

The text table mirrors the usual labeler paper layout: rows = findings, columns = precision,
recall and F1 each with its 95% bootstrap CI, and support; then micro / macro / weighted rows.
The CSV is long format (one metric per line: section, task, class, metric, value, CI) so any
table of a paper can be pivoted from it; the JSON holds everything, conventions included.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from extractors.evaluate.metrics import Evaluation, PairedDelta
from extractors.evaluate.stats import Interval, McNemarResult
from extractors.evaluate.tasks import Coverage, Section

CONVENTIONS = [
    "precision = tp/(tp+fp), recall = tp/(tp+fn), F1 = 2tp/(2tp+fp+fn); '-' = undefined (0/0)",
    "support = number of gold reports in the class",
    "micro: tp/fp/fn summed over findings; macro: unweighted mean over findings with support > 0; "
    "weighted: mean of per-finding P/R/F1 weighted by support; undefined values count as 0 "
    "in both averages",
    "CheXbert-style weighted F1: per finding, the positive/negative/uncertain F1s weighted by "
    "support (not_mentioned/null excluded); overall = mean over findings",
    "error lines, predictions failing the schema and gold reports without a prediction are "
    "scored as misses (a miss costs recall, adds no false positive)",
    "95% CI: percentile bootstrap over reports, seeded; resamples where a metric is undefined "
    "are left out of its interval",
    "paired P-values: two-sided paired bootstrap (deltas centred on the observed one) and McNemar "
    "(exact binomial when < 25 discordant reports, else chi-square with continuity correction); "
    "Holm-adjusted over the findings of each table",
]


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _fmt(iv: Interval | None, ci: bool = True) -> str:
    if iv is None or not math.isfinite(iv.value):
        return "-"
    if not ci or not math.isfinite(iv.low):
        return f"{iv.value:.3f}"
    return f"{iv.value:.3f} [{iv.low:.3f}, {iv.high:.3f}]"


def _fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(r, widths, strict=True))
    )
    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *[line(r) for r in rows]])


# ---------------------------------------------------------------------------------------------
# structured results
# ---------------------------------------------------------------------------------------------
def section_result(section: Section, ev: Evaluation) -> dict[str, Any]:
    """JSON-ready rows of one section: per class, per task, aggregates and overall figures."""
    v = ev.values
    classes, tasks, aggs = [], [], []
    for t in section.tasks:
        for c in t.reported:
            classes.append(
                {
                    "task": t.name,
                    "class": c,
                    **{
                        m: v[("class", t.name, c, m)].as_dict()
                        for m in ("precision", "recall", "f1")
                    },
                    "support": int(v[("class", t.name, c, "support")].value),
                }
            )
        row: dict[str, Any] = {
            "task": t.name,
            "accuracy": v[("task", t.name, "accuracy")].as_dict(),
            "scored": int(v[("task", t.name, "scored")].value),
        }
        if ("task", t.name, "weighted_f1") in v:
            row["weighted_f1"] = v[("task", t.name, "weighted_f1")].as_dict()
        tasks.append(row)
    reported = list(dict.fromkeys(c for t in section.tasks for c in t.reported))
    for c in reported:
        for avg in ("micro", "macro", "weighted"):
            metrics = {
                m: v[("agg", c, avg, m)].as_dict()
                for m in ("precision", "recall", "f1")
                if ("agg", c, avg, m) in v
            }
            if metrics:
                aggs.append({"class": c, "average": avg, **metrics})
    overall = {k[1]: iv.as_dict() for k, iv in v.items() if k[0] == "overall"}
    return {
        "name": section.name,
        "title": section.title,
        "note": section.note,
        "layout": section.layout,
        "classes": classes,
        "tasks": tasks,
        "aggregates": aggs,
        "overall": overall,
    }


def comparison_rows(
    section: Section,
    deltas: dict[tuple[str, ...], PairedDelta],
    mcnemars: dict[str, McNemarResult],
    holm_boot: dict[tuple[str, ...], float],
    holm_mcnemar: dict[str, float],
) -> list[dict[str, Any]]:
    """One row per compared metric (per finding, then aggregates)."""
    rows = []
    for key, d in deltas.items():
        task = key[1] if key[0] in ("class", "task") else None
        if key[0] == "class":  # ("class", task, cls, metric)
            label, metric = key[1], f"{key[3]} ({key[2]})"
        elif key[0] == "task":  # ("task", task, metric)
            label, metric = key[1], key[2]
        elif key[0] == "agg":  # ("agg", cls, average, metric)
            label, metric = f"{key[2]} ({key[1]})", key[3]
        else:  # ("overall", metric)
            label, metric = "overall", key[1]
        mc = mcnemars.get(task) if task is not None else None
        rows.append(
            {
                "section": section.name,
                "label": label,
                "metric": metric,
                "a": _num(d.a),
                "b": _num(d.b),
                "delta": d.delta.as_dict(),
                "p_bootstrap": _num(d.p_value),
                "p_bootstrap_holm": _num(holm_boot.get(key)),
                "mcnemar_b_only_a_correct": mc.b if mc else None,
                "mcnemar_c_only_b_correct": mc.c if mc else None,
                "mcnemar_method": mc.method if mc else None,
                "p_mcnemar": _num(mc.p_value) if mc else None,
                "p_mcnemar_holm": _num(holm_mcnemar.get(task)) if task is not None else None,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------
def render_text(result: dict[str, Any]) -> str:
    """The whole evaluation as plain text for the terminal."""
    out: list[str] = []
    cov = result["predictions"]["coverage"]
    out.append(
        f"Schema {result['schema']}  ·  gold {result['gold']['format']}: {result['gold']['path']}"
    )
    out.append(f"Predictions: {result['predictions']['path']}")
    out.append(_coverage_line(cov))
    boot = result["bootstrap"]
    out.append(
        f"95% CIs: {boot['resamples']} bootstrap resamples over reports, seed {boot['seed']}"
    )
    for sec in result["sections"]:
        out.append("")
        out.append(f"== {sec['title']} ==")
        if sec["note"]:
            out.append(f"({sec['note']})")
        out.append(_render_section(sec))
    if result.get("comparison"):
        out.append("")
        out.append(_render_comparison(result["comparison"]))
    return "\n".join(out)


def _coverage_line(cov: dict[str, Any]) -> str:
    rate = cov["invalid_rate"]
    parts = [
        f"{cov['gold_reports']} gold reports scored",
        f"invalid/error-output rate {rate:.1%}" if rate is not None else "invalid rate -",
        f"({cov['error_or_invalid_predictions']} error or invalid lines, "
        f"{cov['missing_predictions']} missing predictions, both scored as misses)",
    ]
    extra = []
    if cov["gold_skipped"]:
        extra.append(f"{cov['gold_skipped']} gold reports skipped (no human labels)")
    if cov["predictions_without_gold"]:
        extra.append(f"{cov['predictions_without_gold']} predictions without gold (not scored)")
    if cov["unreadable_prediction_lines"]:
        extra.append(f"{cov['unreadable_prediction_lines']} unreadable prediction lines")
    line = "; ".join(parts[:2]) + " " + parts[2]
    return line + ("\n" + "; ".join(extra) if extra else "")


def _iv(d: dict[str, Any] | None) -> Interval | None:
    if d is None or d["value"] is None:
        return None
    lo = d["ci_low"] if d["ci_low"] is not None else math.nan
    hi = d["ci_high"] if d["ci_high"] is not None else math.nan
    return Interval(d["value"], lo, hi)


def _render_section(sec: dict[str, Any]) -> str:
    blocks: list[str] = []
    header = ["", "Precision [95% CI]", "Recall [95% CI]", "F1 [95% CI]", "Support"]
    if sec["layout"] == "by_class":
        for cls in dict.fromkeys(r["class"] for r in sec["classes"]):
            rows = [
                [
                    r["task"],
                    _fmt(_iv(r["precision"])),
                    _fmt(_iv(r["recall"])),
                    _fmt(_iv(r["f1"])),
                    str(r["support"]),
                ]
                for r in sec["classes"]
                if r["class"] == cls
            ]
            total = sum(r["support"] for r in sec["classes"] if r["class"] == cls)
            for a in sec["aggregates"]:
                if a["class"] == cls:
                    rows.append(
                        [
                            a["average"],
                            _fmt(_iv(a.get("precision"))),
                            _fmt(_iv(a.get("recall"))),
                            _fmt(_iv(a.get("f1"))),
                            str(total),
                        ]
                    )
            blocks.append(f"class: {cls}\n" + _table([f"Finding ({cls})", *header[1:]], rows))
        wrows = [
            [t["task"], _fmt(_iv(t["accuracy"])), _fmt(_iv(t.get("weighted_f1"))), str(t["scored"])]
            for t in sec["tasks"]
            if "weighted_f1" in t
        ]
        if wrows:
            if "chexbert_weighted_f1" in sec["overall"]:
                wrows.append(["mean", "", _fmt(_iv(sec["overall"]["chexbert_weighted_f1"])), ""])
            blocks.append(
                "per finding\n"
                + _table(
                    ["Finding", "Accuracy [95% CI]", "Weighted F1 (CheXbert) [95% CI]", "Scored"],
                    wrows,
                )
            )
    else:
        for t in sec["tasks"]:
            rows = [
                [
                    r["class"],
                    _fmt(_iv(r["precision"])),
                    _fmt(_iv(r["recall"])),
                    _fmt(_iv(r["f1"])),
                    str(r["support"]),
                ]
                for r in sec["classes"]
                if r["task"] == t["task"]
                and (r["support"] > 0 or r["precision"]["value"] is not None)
            ]
            acc = _fmt(_iv(t["accuracy"]))
            head = f"{t['task']}: accuracy {acc} over {t['scored']} scored reports"
            if "weighted_f1" in t:
                head += f"; weighted F1 {_fmt(_iv(t['weighted_f1']))}"
            blocks.append(head + ("\n" + _table(["Class", *header[1:]], rows) if rows else ""))
    if sec["layout"] == "by_task" and len(sec["tasks"]) > 1:
        blocks.append(
            f"all tasks correct (exact match): {_fmt(_iv(sec['overall'].get('exact_match')))}"
        )
    return "\n\n".join(blocks)


def _render_comparison(comp: dict[str, Any]) -> str:
    lines = [f"== Comparison: A = {comp['a']}  vs  B = {comp['b']} =="]
    header = [
        "",
        "Metric",
        "A",
        "B",
        "A-B [95% CI]",
        "p boot",
        "p boot Holm",
        "b/c",
        "p McNemar",
        "p McN Holm",
    ]
    by_section: dict[str, list[dict[str, Any]]] = {}
    for r in comp["rows"]:
        by_section.setdefault(r["section"], []).append(r)
    for name, rows in by_section.items():
        table = [
            [
                r["label"],
                r["metric"],
                "-" if r["a"] is None else f"{r['a']:.3f}",
                "-" if r["b"] is None else f"{r['b']:.3f}",
                _fmt(_iv(r["delta"])),
                _fmt_p(r["p_bootstrap"]),
                _fmt_p(r["p_bootstrap_holm"]),
                ""
                if r["mcnemar_b_only_a_correct"] is None
                else f"{r['mcnemar_b_only_a_correct']}/{r['mcnemar_c_only_b_correct']}",
                _fmt_p(r["p_mcnemar"]),
                _fmt_p(r["p_mcnemar_holm"]),
            ]
            for r in rows
        ]
        lines.append(f"[{name}]")
        lines.append(_table(header, table))
    lines.append("b/c: reports only A / only B got right (McNemar's discordant pairs)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def long_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric as one row: section, task, class, average, metric, value, ci_low, ci_high."""
    rows: list[dict[str, Any]] = []

    def add(section: str, task: str, cls: str, average: str, metric: str, value: Any) -> None:
        iv = value if isinstance(value, dict) else {"value": value, "ci_low": None, "ci_high": None}
        rows.append(
            {"section": section, "task": task, "class": cls, "average": average, "metric": metric,
             "value": iv["value"], "ci_low": iv["ci_low"], "ci_high": iv["ci_high"]}
        )  # fmt: skip

    for sec in result["sections"]:
        for r in sec["classes"]:
            for m in ("precision", "recall", "f1", "support"):
                add(sec["name"], r["task"], r["class"], "", m, r[m])
        for t in sec["tasks"]:
            for m in ("accuracy", "weighted_f1", "scored"):
                if m in t:
                    add(sec["name"], t["task"], "", "", m, t[m])
        for a in sec["aggregates"]:
            for m in ("precision", "recall", "f1"):
                if m in a:
                    add(sec["name"], "", a["class"], a["average"], m, a[m])
        for m, value in sec["overall"].items():
            add(sec["name"], "", "", "overall", m, value)
    return rows


def output_paths(out: str | Path) -> dict[str, Path]:
    """``--out DIR`` (existing directory or ending in a separator) or ``--out PREFIX``."""
    text = str(out)
    out = Path(out)
    if out.is_dir() or text.endswith(("/", "\\")):
        out.mkdir(parents=True, exist_ok=True)
        base = out / "evaluation"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        base = out
    return {
        "json": base.with_name(base.name + ".json"),
        "csv": base.with_name(base.name + ".csv"),
        "txt": base.with_name(base.name + ".txt"),
        "comparison_csv": base.with_name(base.name + ".comparison.csv"),
    }


def write_outputs(result: dict[str, Any], text: str, out: str | Path) -> list[Path]:
    """Write JSON, long CSV, the text table and (with a comparison) a comparison CSV."""
    paths = output_paths(out)
    written = []
    paths["json"].write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    written.append(paths["json"])
    rows = long_rows(result)
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh,
            fieldnames=[
                "section",
                "task",
                "class",
                "average",
                "metric",
                "value",
                "ci_low",
                "ci_high",
            ],
        )
        writer.writeheader()
        writer.writerows(rows)
    written.append(paths["csv"])
    paths["txt"].write_text(text + "\n", encoding="utf-8")
    written.append(paths["txt"])
    comp = result.get("comparison")
    if comp:
        with paths["comparison_csv"].open("w", newline="", encoding="utf-8") as fh:
            flat = [
                {**{k: v for k, v in r.items() if k != "delta"},
                 "delta": r["delta"]["value"], "delta_ci_low": r["delta"]["ci_low"],
                 "delta_ci_high": r["delta"]["ci_high"]}
                for r in comp["rows"]
            ]  # fmt: skip
            writer = csv.DictWriter(fh, fieldnames=list(flat[0]) if flat else ["section"])
            writer.writeheader()
            writer.writerows(flat)
        written.append(paths["comparison_csv"])
    return written


def coverage_dict(cov: Coverage) -> dict[str, Any]:
    d = cov.as_dict()
    d["invalid_rate"] = _num(d["invalid_rate"])
    return d
