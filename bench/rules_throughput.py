"""Rule extraction throughput: reports/s on one core, and how cost grows with report length.

Run: ``.venv/bin/python bench/rules_throughput.py [--schema cxr] [--reports 2000]``.
Uses the Open-i dev reports from ../shared/data when present, else the bundled examples.
Prints reports/s, µs per report and the cost ratio for reports 2x, 4x, 8x longer.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractors.extract import make_extractor  # noqa: E402
from extractors.results import ReportInput  # noqa: E402
from extractors.schemas import get_schema  # noqa: E402

OPENI = REPO.parent / "shared" / "data" / "cxr_openi" / "reports.csv"
EXAMPLES = REPO / "examples" / "reports"


def load_texts(schema: str) -> list[str]:
    """Real report texts for ``schema``: Open-i for cxr when present, else bundled examples."""
    if schema == "cxr" and OPENI.exists():
        with OPENI.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [f"FINDINGS: {r['findings']}\nIMPRESSION: {r['impression']}" for r in rows]
    path = EXAMPLES / f"{schema}.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def measure(schema_name: str, texts: list[str], n: int) -> float:
    """Reports per second for ``n`` reports cycled from ``texts`` (best of three runs)."""
    extractor = make_extractor("rules", get_schema(schema_name))
    reports = [ReportInput(report_id=str(i), text=texts[i % len(texts)]) for i in range(n)]
    extractor.extract_batch(reports[:50])  # warm-up: regex compilation, imports
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        extractor.extract_batch(reports)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", default="cxr", choices=["cxr", "mammo", "ccta"])
    parser.add_argument("--reports", type=int, default=2000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    texts = load_texts(args.schema)
    mean_chars = sum(map(len, texts)) / len(texts)
    base = measure(args.schema, texts, args.reports)
    print(f"schema={args.schema} reports={args.reports} mean_chars={mean_chars:.0f} (one core)")
    print(f"  throughput: {base:,.0f} reports/s  ({1e6 / base:,.0f} µs/report)  target >= 500")
    print("  length growth (same content repeated k times; cost ratio vs k=1, linear = k):")
    for k in (2, 4, 8):
        longer = [" ".join([t] * k) for t in texts]
        rate = measure(args.schema, longer, max(args.reports // k, 100))
        print(f"    k={k}: {rate:,.0f} reports/s, cost ratio {base / rate:.2f}")


if __name__ == "__main__":
    main()
