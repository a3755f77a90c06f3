"""Open-i development data split once into a *tune* part and a *check* part, both scored.

The split is fixed by the report id alone, so it never changes and needs no stored list::

    part(uid) = "check" if sha256(uid.encode("utf-8")).digest()[0] >= 128 else "tune"

(the first byte of the SHA-256 of the Open-i ``uid`` as written in reports.csv: about half the
reports each). Rules are written against the tune part's errors only; the check part is scored
without reading its reports, so the gap between the two shows how much the rules fit the text
they were written on.

Scoring is the README's: ``rrief extract`` then ``rrief evaluate`` against the NegBio
ChestX-ray14 gold, the 8 findings that map to CheXpert, positive class, a predicted
``uncertain`` counted as negative (U-zeros); No Finding separately. Each part's reports and gold
rows are written to a temporary folder and scored there.

Run::

    .venv/bin/python bench/rules_dev_split.py                      # both tables and the gap
    .venv/bin/python bench/rules_dev_split.py --errors "Lung Lesion"   # tune part only

``--errors`` lists the tune part's false positives and false negatives for one finding with
the report text, to write rules from; it never shows a check-part report.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractors.gold.chestxray14 import CHESTXRAY14_MAP  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "cxr_openi"
EIGHT = (
    "Atelectasis,Cardiomegaly,Pleural Effusion,Pneumonia,Pneumothorax,Consolidation,Edema,"
    "Lung Lesion"
)
PARTS = ("tune", "check")


def part(report_id: str) -> str:
    """``tune`` or ``check`` for an Open-i uid (see the module docstring)."""
    return "check" if hashlib.sha256(report_id.encode("utf-8")).digest()[0] >= 128 else "tune"


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _rrief(*args: str) -> str:
    exe = Path(sys.executable).with_name("rrief")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"rrief {args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def split_files(workdir: Path, data: Path) -> dict[str, tuple[Path, Path, int]]:
    """Per part: its reports.csv, its gold csv, and its report count."""
    report_cols, reports = _read(data / "reports.csv")
    gold_cols, gold = _read(data / "labels_gold_chestxray14.csv")
    out = {}
    for name in PARTS:
        mine = [r for r in reports if part(r["uid"]) == name]
        ids = {r["uid"] for r in mine}
        reports_csv, gold_csv = workdir / f"reports_{name}.csv", workdir / f"gold_{name}.csv"
        _write(reports_csv, report_cols, mine)
        _write(gold_csv, gold_cols, [g for g in gold if g["uid"] in ids])
        out[name] = (reports_csv, gold_csv, len(mine))
    return out


def extract(reports_csv: Path, pred: Path) -> None:
    _rrief(
        "extract", "--schema", "cxr", "--input", str(reports_csv), "--id-col", "uid",
        "--text-col", "findings", "--text-col", "impression", "--output", str(pred),
    )  # fmt: skip


def evaluate(pred: Path, gold_csv: Path, findings: str, out: Path) -> dict[str, Any]:
    """The U-zeros section of ``rrief evaluate`` (uncertain counted as negative)."""
    _rrief(
        "evaluate", "--schema", "cxr", "--pred", str(pred), "--gold", str(gold_csv),
        "--findings", findings, "--uncertain-policy", "negative", "--out", str(out),
    )  # fmt: skip
    result = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    (section,) = result["sections"]
    return section


def _num(metric: dict[str, Any]) -> str:
    return f"{metric['value']:.3f}"


def _ci(metric: dict[str, Any]) -> str:
    return f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def print_table(name: str, n: int, section: dict[str, Any], no_finding: dict[str, Any]) -> None:
    print(f"\n{name} part: {n} reports (positive class, uncertain counted as negative)")
    print("| finding | precision | recall | F1 [95% CI] | support |")
    print("|---|---|---|---|---|")
    for row in sorted(section["classes"], key=lambda r: r["task"]):
        print(
            f"| {row['task']} | {_num(row['precision'])} | {_num(row['recall'])} | "
            f"{_ci(row['f1'])} | {row['support']} |"
        )
    support = sum(r["support"] for r in section["classes"])
    for agg in section["aggregates"]:
        if agg["average"] in ("micro", "macro"):
            print(
                f"| **{agg['average']}** | {_num(agg['precision'])} | {_num(agg['recall'])} | "
                f"**{_ci(agg['f1'])}** | {support} |"
            )
    (nf,) = no_finding["classes"]
    print(
        f"No Finding: precision {_num(nf['precision'])}, recall {_num(nf['recall'])}, "
        f"F1 {_ci(nf['f1'])} (support {nf['support']})"
    )


def _aggregate(section: dict[str, Any], average: str) -> float:
    return next(a["f1"]["value"] for a in section["aggregates"] if a["average"] == average)


def show_errors(finding: str, reports_csv: Path, gold_csv: Path, pred: Path) -> None:
    """False positives and negatives of ``finding`` on the tune part, with their text."""
    _, reports = _read(reports_csv)
    _, gold = _read(gold_csv)
    gold_by_id = {g["uid"]: g for g in gold}
    preds = {}
    for line in pred.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        preds[str(rec["report_id"])] = rec
    for r in reports:
        rec = preds.get(r["uid"], {})
        state = (rec.get("labels") or {}).get(finding, "error")
        predicted = state == "positive"
        actual = any(gold_by_id[r["uid"]][c] == "1" for c in CHESTXRAY14_MAP[finding])
        if predicted != actual:
            kind = "FP" if predicted else "FN"
            evidence = [e["text"] for e in (rec.get("evidence") or {}).get(finding, [])]
            print(f"--- {kind} uid={r['uid']} predicted={state} MeSH={r['MeSH']}")
            print(f"    findings:   {r['findings']}")
            print(f"    impression: {r['impression']}")
            if evidence:
                print(f"    evidence:   {evidence}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the Open-i files")
    parser.add_argument(
        "--errors", metavar="FINDING", help="list the TUNE part's errors for this finding"
    )
    args = parser.parse_args()
    if not (args.data / "reports.csv").exists():
        raise SystemExit(f"Open-i development data not found under {args.data}")
    with tempfile.TemporaryDirectory(prefix="rrief-split-") as tmp:
        workdir = Path(tmp)
        files = split_files(workdir, args.data)
        if args.errors:
            if args.errors not in CHESTXRAY14_MAP:
                known = list(CHESTXRAY14_MAP)
                raise SystemExit(f"unknown finding {args.errors!r}; one of {known}")
            reports_csv, gold_csv, _ = files["tune"]
            extract(reports_csv, workdir / "tune.jsonl")
            show_errors(args.errors, reports_csv, gold_csv, workdir / "tune.jsonl")
            return
        micro: dict[str, float] = {}
        for name in PARTS:
            reports_csv, gold_csv, n = files[name]
            pred = workdir / f"{name}.jsonl"
            extract(reports_csv, pred)
            section = evaluate(pred, gold_csv, EIGHT, workdir / f"{name}-eight")
            no_finding = evaluate(pred, gold_csv, "No Finding", workdir / f"{name}-nf")
            print_table(name, n, section, no_finding)
            micro[name] = _aggregate(section, "micro")
        print(f"\ntune - check gap (micro-F1): {micro['tune'] - micro['check']:+.3f}")


if __name__ == "__main__":
    main()
