"""The seed paper's experiment at small scale: does a LoRA-tuned local LLM beat the rules, and how
does it grow with the number of annotated reports? (A benchmark, not a test.)

CXR, Open-i development data (``../shared/data/cxr_openi``):

* **held-out part**: the first ``--holdout`` (default 150) reports, in SHA-256-of-uid order, of
  the *check* half of ``bench/rules_dev_split.py`` (the half the rules were never tuned on), with
  MeSH labels and text. No adapter ever sees them;
* **training pools**: the other labelled reports in the same order; an adapter with N reports
  trains on the first N (nested: the 50 are part of the 100);
* **training labels**: the MeSH positives (human) plus the negatives the rules are sure of (the
  rules say ``negative`` and MeSH does not name the finding): MeSH encodes no negation, and a
  model that never sees a negative learns to call everything it reads positive;
* **conditions**: the rules, each adapter (SmolLM2-135M-Instruct, LoRA r=16 all-linear, lr 1e-3,
  batch 4, more epochs for smaller N), the base model zero-shot (full instruction), optionally
  5-shot, and the rules→adapter cascade (``extractors.extract.cascade.route`` on the rules'
  labels: routed reports take the adapter's labels, computed from the stored predictions of both);
* **scoring**: ``rrief evaluate`` (in process) against the NegBio ChestX-ray14 gold: the 8
  NegBio-mappable findings, positive class, uncertain counted as negative, micro/macro F1 with
  bootstrap CIs, and the paired bootstrap against the rules (``--compare``).

Mammography (CDD-CESM, ``../shared/data/mammo_cddcesm``): the same with the first 75 breasts
(hash order) held out and N = 50, 100 from the others; scored by ``rrief evaluate`` against the
cddcesm gold (BI-RADS exact, finding types).

Each finished condition is one JSON file under ``--out`` (default
``.rrief/bench/lora_learning_curve``), next to its predictions, so an interrupted run loses only
the condition in progress and a rerun skips what is done. ``--report`` prints the table from
whatever has finished. Run (``make base-model`` first)::

    .venv/bin/python bench/lora_learning_curve.py                  # everything, in order
    .venv/bin/python bench/lora_learning_curve.py --conditions cxr-rules,cxr-n50
    .venv/bin/python bench/lora_learning_curve.py --report
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rules_dev_split import EIGHT, part  # noqa: E402

from extractors.evaluate.command import run_evaluation  # noqa: E402
from extractors.extract.cascade import route  # noqa: E402
from extractors.gold import GoldExample, load_examples  # noqa: E402
from extractors.logs import configure_logging  # noqa: E402
from extractors.results import ExtractionResult, ReportInput  # noqa: E402
from extractors.schemas import SchemaSpec, get_schema  # noqa: E402

DATA = REPO.parent / "shared" / "data"
BASE_MODEL = REPO / ".rrief" / "models" / "smollm2-135m-instruct"
OUT = REPO / ".rrief" / "bench" / "lora_learning_curve"
EPOCHS = {50: 3, 100: 2, 200: 2, 500: 1}  # 2 shared CPU cores: as many passes as the time allowed
LR = 1e-3
CXR_NS = (50, 100, 200)
MAMMO_NS = (50, 100)
CONDITIONS = (
    "cxr-rules",
    *(f"cxr-n{n}" for n in CXR_NS),
    "cxr-zero-shot",
    "mammo-rules",
    *(f"mammo-n{n}" for n in MAMMO_NS),
    "cxr-5-shot",
)


def _hash(report_id: str) -> str:
    return hashlib.sha256(report_id.encode("utf-8")).hexdigest()


# -- data ---------------------------------------------------------------------------------------
class Dataset:
    """One schema's examples split into held-out and training pool, plus the held-out gold file."""

    def __init__(self, name: str, out: Path, holdout: int) -> None:
        self.name = name
        if name == "cxr":
            self.schema = get_schema("cxr")
            self.source = DATA / "cxr_openi" / "reports.csv"
            examples, _ = load_examples(self.source, self.schema, "openi-mesh")
            ordered = sorted(examples, key=lambda e: _hash(e.report_id))
            check = [e for e in ordered if part(e.report_id) == "check"]
            self.heldout = check[:holdout]
        else:
            self.schema = get_schema("mammo")
            self.source = DATA / "mammo_cddcesm" / "breast_reports.csv"
            examples, _ = load_examples(self.source, self.schema, "cddcesm")
            ordered = sorted(examples, key=lambda e: _hash(e.report_id))
            self.heldout = ordered[:holdout]
        held = {e.report_id for e in self.heldout}
        self.pool = [e for e in ordered if e.report_id not in held]
        self.gold = out / f"{name}-heldout-gold.csv"
        self._write_gold(held)

    def _write_gold(self, held: set[str]) -> None:
        if self.name == "cxr":
            src, id_of = DATA / "cxr_openi" / "labels_gold_chestxray14.csv", lambda r: r["uid"]
        else:
            src = self.source
            id_of = lambda r: f"{r['patient_id'].strip()}{r['side'].strip().upper()}"  # noqa: E731
        with src.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [r for r in reader if id_of(r) in held]
            columns = list(reader.fieldnames or [])
        with self.gold.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    @property
    def gold_format(self) -> str:
        return "chestxray14" if self.name == "cxr" else "cddcesm"

    @property
    def findings(self) -> list[str] | None:
        return EIGHT.split(",") if self.name == "cxr" else None

    def inputs(self) -> list[ReportInput]:
        return [ReportInput(report_id=e.report_id, text=e.text) for e in self.heldout]


def with_rule_negatives(schema: SchemaSpec, examples: list[GoldExample]) -> list[dict[str, Any]]:
    """Gold records: the gold labels plus the negatives the rules are sure of (CXR only)."""
    from extractors.extract.registry import make_extractor

    rules = make_extractor("rules", schema)
    results = rules.extract_batch(
        [ReportInput(report_id=e.report_id, text=e.text) for e in examples]
    )
    records = []
    for example, result in zip(examples, results, strict=True):
        labels = dict(example.labels)
        if schema.name == "cxr" and result.status == "ok" and result.labels:
            for name, value in result.labels.items():
                if value == "negative" and labels.get(name) == "not_mentioned":
                    labels[name] = "negative"
        records.append({"report_id": example.report_id, "text": example.text, "labels": labels})
    return records


# -- conditions -----------------------------------------------------------------------------------
def extract(extractor: Any, data: Dataset, preds: Path) -> dict[str, Any]:
    """Predictions for the held-out reports, timed; error lines counted as invalid outputs."""
    start = time.perf_counter()
    results: list[ExtractionResult] = extractor.extract_batch(data.inputs())
    seconds = time.perf_counter() - start
    preds.write_text(
        "".join(json.dumps(r.to_json_dict()) + "\n" for r in results), encoding="utf-8"
    )
    invalid = sum(r.status == "error" for r in results)
    return {
        "extract_seconds": round(seconds, 1),
        "reports_per_second": round(len(results) / seconds, 3),
        "invalid": invalid,
        "invalid_rate": round(invalid / len(results), 4),
    }


def score(data: Dataset, preds: Path, rules_preds: Path | None) -> dict[str, Any]:
    compare = rules_preds if rules_preds is not None and rules_preds != preds else None
    result = run_evaluation(
        data.schema.id,
        preds,
        data.gold,
        data.gold_format,
        compare_path=compare,
        uncertain_policy="negative",
        findings=data.findings,
        resamples=1000,
    )
    out: dict[str, Any] = {"sections": []}
    for sec in result["sections"]:
        out["sections"].append(
            {
                "name": sec.get("name"),
                "aggregates": sec.get("aggregates", []),
                "classes": sec.get("classes", []),
                "tasks": sec.get("tasks", []),
            }
        )
    if "comparison" in result:
        out["vs_rules"] = [
            r for r in result["comparison"]["rows"] if r["metric"] in ("f1", "accuracy")
        ]
    return out


def run_rules(data: Dataset, out: Path) -> dict[str, Any]:
    from extractors.extract.registry import make_extractor

    preds = out / f"{data.name}-rules.preds.jsonl"
    info = extract(make_extractor("rules", data.schema), data, preds)
    return {**info, **score(data, preds, None)}


def run_adapter(data: Dataset, n: int, out: Path, base_model: Path) -> dict[str, Any]:
    from extractors.llm.adapters import METADATA_FILE, load_adapter_metadata
    from extractors.llm.hf_backend import HFExtractor
    from extractors.llm.training import TrainConfig, train_adapter

    name = f"{data.name}-n{n}"
    train_file = out / f"{name}.train.jsonl"
    records = with_rule_negatives(data.schema, data.pool[:n])
    train_file.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    epochs = EPOCHS[n]
    config = TrainConfig(
        r=16, alpha=32, dropout=0.05, lr=LR, epochs=epochs, batch_size=4, warmup_ratio=0.05,
        seed=0, device="cpu", eval_exact_match=False,
    )  # fmt: skip
    adapter = out / "adapters" / name
    if (adapter / METADATA_FILE).is_file():  # trained by an earlier, interrupted run: reuse it
        metadata = load_adapter_metadata(adapter)
        runtime = metadata.metrics.get("train_runtime_s")
        train_seconds = float(runtime or 0.0)
    else:
        import shutil

        shutil.rmtree(adapter, ignore_errors=True)  # a half-written attempt: train again
        shutil.rmtree(adapter.with_name(adapter.name + ".checkpoints"), ignore_errors=True)
        start = time.perf_counter()
        metadata = train_adapter(
            data.schema, base_model, train_file, adapter, config=config, progress=False
        ).metadata
        train_seconds = time.perf_counter() - start
        runtime = metadata.metrics.get("train_runtime_s") or train_seconds
    extractor = HFExtractor(data.schema, adapter, base_model, device="cpu", batch_size=16)
    preds = out / f"{name}.preds.jsonl"
    info = extract(extractor, data, preds)
    rules_preds = out / f"{data.name}-rules.preds.jsonl"
    scored = score(data, preds, rules_preds if rules_preds.exists() else None)
    summary = {
        "n_train": n,
        "epochs": epochs,
        "lr": LR,
        "train_seconds": round(train_seconds, 1),
        "train_seconds_per_report_epoch": round(float(runtime) / (n * epochs), 3),
        "train_loss_first": metadata.metrics.get("train_loss_first"),
        "train_loss_last": metadata.metrics.get("train_loss_last"),
        **info,
        **scored,
    }
    if rules_preds.exists():
        summary["cascade"] = cascade(data, rules_preds, preds, out / f"{name}-cascade.preds.jsonl")
    return summary


def cascade(data: Dataset, rules_preds: Path, llm_preds: Path, out_preds: Path) -> dict[str, Any]:
    """The rules→LLM cascade from stored predictions: routed reports take the LLM's labels."""
    texts = {e.report_id: e.text for e in data.heldout}
    rules = {
        json.loads(x)["report_id"]: json.loads(x) for x in rules_preds.read_text().splitlines()
    }
    llm = {json.loads(x)["report_id"]: json.loads(x) for x in llm_preds.read_text().splitlines()}
    lines, routed = [], 0
    for rid, rec in rules.items():
        reasons = route(data.schema, texts[rid], rec.get("labels"))
        take = llm[rid] if reasons and llm[rid]["status"] == "ok" else rec
        routed += bool(reasons)
        lines.append(json.dumps(take))
    out_preds.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "routed": routed,
        "routed_share": round(routed / len(rules), 3),
        **score(data, out_preds, rules_preds),
    }


def run_base(data: Dataset, out: Path, base_model: Path, shots: int) -> dict[str, Any]:
    from extractors.llm.few_shot import select_shots
    from extractors.llm.hf_backend import HFExtractor

    chosen = select_shots(data.schema, data.pool, shots) if shots else []
    extractor = HFExtractor(data.schema, None, base_model, device="cpu", batch_size=8, shots=chosen)
    name = f"{data.name}-{shots}-shot" if shots else f"{data.name}-zero-shot"
    preds = out / f"{name}.preds.jsonl"
    info = extract(extractor, data, preds)
    rules_preds = out / f"{data.name}-rules.preds.jsonl"
    return {
        "shots": shots,
        **info,
        **score(data, preds, rules_preds if rules_preds.exists() else None),
    }


# -- report -------------------------------------------------------------------------------------
def _agg(section: dict[str, Any], average: str) -> str:
    for a in section["aggregates"]:
        if a.get("average") == average and "f1" in a:
            f1 = a["f1"]
            if f1["value"] is None:
                return "–"
            if f1.get("ci_low") is None:
                return f"{f1['value']:.3f}"
            return f"{f1['value']:.3f} [{f1['ci_low']:.2f}, {f1['ci_high']:.2f}]"
    return "–"


def _delta(summary: dict[str, Any]) -> str:
    for row in summary.get("vs_rules", []):
        if row["label"].startswith("micro"):
            d = row["delta"]
            return f"{d['value']:+.3f} (p={row['p_bootstrap']:.3f})"
    return "–"


def report(out: Path) -> None:
    rows = []
    for cond in CONDITIONS:
        path = out / f"{cond}.json"
        if not path.exists():
            rows.append(f"| {cond} | (not run) | | | | | | |")
            continue
        s = json.loads(path.read_text())
        sec = s["sections"][0]
        train = s.get("train_seconds_per_report_epoch")
        rows.append(
            f"| {cond} | {s.get('n_train', '–')} | {train if train is not None else '–'} | "
            f"{s['reports_per_second']} | {s['invalid']} ({s['invalid_rate']:.1%}) | "
            f"{_agg(sec, 'micro')} | {_agg(sec, 'macro')} | {_delta(s)} |"
        )
        if "cascade" in s:
            c = s["cascade"]
            csec = c["sections"][0]
            rows.append(
                f"| {cond} cascade ({c['routed_share']:.0%} routed) | | | | | "
                f"{_agg(csec, 'micro')} | {_agg(csec, 'macro')} | {_delta(c)} |"
            )
    print("| condition | N train | train s/report-epoch | extract reports/s | invalid | "
          "micro-F1 [95% CI] | macro-F1 [95% CI] | Δ micro vs rules (paired p) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nMammography (accuracy per task [95% CI], held-out breasts):")
    for cond in CONDITIONS:
        path = out / f"{cond}.json"
        if path.exists() and cond.startswith("mammo"):
            s = json.loads(path.read_text())
            parts = []
            for sec in s["sections"]:
                for t in sec["tasks"]:
                    acc = t.get("accuracy") or {}
                    if acc.get("value") is not None:
                        ci = (
                            f" [{acc['ci_low']:.2f}, {acc['ci_high']:.2f}]"
                            if acc.get("ci_low") is not None
                            else ""
                        )
                        parts.append(f"{t['task']} {acc['value']:.3f}{ci}")
            extra = f", invalid {s['invalid']}, {s['reports_per_second']} reports/s"
            print(f"- {cond}: " + "; ".join(parts) + extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--base-model", type=Path, default=BASE_MODEL)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--holdout", type=int, default=150, help="CXR held-out reports")
    parser.add_argument("--mammo-holdout", type=int, default=75)
    parser.add_argument("--report", action="store_true", help="only print the table")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    configure_logging("INFO")  # rrief.train step lines: progress of a long run
    if args.report:
        report(args.out)
        return
    if not (args.base_model / "config.json").exists():
        raise SystemExit(f"no base model at {args.base_model}: run `make base-model` first")
    datasets: dict[str, Dataset] = {}

    def data(name: str) -> Dataset:
        if name not in datasets:
            datasets[name] = Dataset(
                name, args.out, args.holdout if name == "cxr" else args.mammo_holdout
            )
        return datasets[name]

    for cond in args.conditions.split(","):
        path = args.out / f"{cond}.json"
        if path.exists():
            print(f"{cond}: done before, skipped", flush=True)
            continue
        name, _, what = cond.partition("-")
        run: Callable[[], dict[str, Any]]
        if what == "rules":
            run = partial(run_rules, data(name), args.out)
        elif what.startswith("n"):
            run = partial(run_adapter, data(name), int(what[1:]), args.out, args.base_model)
        elif what == "zero-shot":
            run = partial(run_base, data(name), args.out, args.base_model, 0)
        elif what.endswith("-shot"):
            k = int(what.split("-")[0])
            run = partial(run_base, data(name), args.out, args.base_model, k)
        else:
            raise SystemExit(f"unknown condition {cond!r}")
        print(f"{cond}: running", flush=True)
        start = time.perf_counter()
        summary = run()
        summary["wall_seconds"] = round(time.perf_counter() - start, 1)
        summary["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        print(f"{cond}: done in {summary['wall_seconds']} s", flush=True)
    report(args.out)


if __name__ == "__main__":
    main()
