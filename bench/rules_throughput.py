"""Rule extraction throughput: reports/s on one core, and how cost grows with report length.

Run: ``.venv/bin/python bench/rules_throughput.py [--schema cxr] [--reports 2000]``.
Uses the Open-i dev reports from ../shared/data for cxr when present, else the demo's
template-written reports (extractors.demo.reports) of the schema.
Prints reports/s, µs per report and the cost ratio for reports 2x, 4x, 8x longer (k different
reports joined into one, so the per-sentence caches of the rules see what a long report holds).
Every timed run starts with empty per-sentence caches (extractors.rules.patterns): sentences
repeated across the reports of a run hit the cache, as they would in production, but nothing
carries over from the warm-up or an earlier run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractors.demo.reports import generate_reports  # noqa: E402
from extractors.extract import make_extractor  # noqa: E402
from extractors.gold.openi import openi_reports  # noqa: E402
from extractors.results import ReportInput  # noqa: E402
from extractors.rules.patterns import clear_sentence_caches  # noqa: E402
from extractors.schemas import get_schema  # noqa: E402

OPENI = REPO.parent / "shared" / "data" / "cxr_openi" / "reports.csv"


def load_texts(schema: str) -> list[str]:
    """Report texts for ``schema``: real Open-i reports for cxr when present, else demo reports."""
    if schema == "cxr" and OPENI.exists():
        return [r["text"] for r in openi_reports(OPENI)]
    reports = generate_reports(days=10, per_day=200)
    return [r.text for r in reports if r.report_type == schema]


def measure(schema_name: str, texts: list[str], n: int) -> float:
    """Reports per second for ``n`` reports cycled from ``texts`` (best of three runs)."""
    extractor = make_extractor("rules", get_schema(schema_name))
    reports = [ReportInput(report_id=str(i), text=texts[i % len(texts)]) for i in range(n)]
    extractor.extract_batch(reports[:50])  # warm-up: regex compilation, imports
    best = float("inf")
    for _ in range(3):
        clear_sentence_caches()
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
    print("  length growth (k different reports joined; cost ratio vs k=1, linear = k):")
    for k in (2, 4, 8):
        longer = [
            "\n\n".join(texts[(i + j) % len(texts)] for j in range(k)) for i in range(len(texts))
        ]
        rate = measure(args.schema, longer, max(args.reports // k, 100))
        print(f"    k={k}: {rate:,.0f} reports/s, cost ratio {base / rate:.2f}")


if __name__ == "__main__":
    main()
