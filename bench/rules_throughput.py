"""Rule extraction throughput: reports/s on one core, and how cost grows with report length.

Run: ``.venv/bin/python bench/rules_throughput.py [--schema cxr] [--reports 2000]``.
Uses the Open-i dev reports from ../shared/data for cxr when present, else the demo's
template-written reports (extractors.demo.reports) of the schema.
Prints reports/s, µs per report and the cost ratio for reports 2x, 4x, 8x longer (k different
reports joined into one, so the per-sentence caches of the rules see what a long report holds).
Every timed run starts with empty per-sentence caches (extractors.rules.patterns): sentences
repeated across the reports of a run hit the cache, as they would in production, but nothing
carries over from the warm-up or an earlier run.

CPU-time rates are printed beside the wall-clock ones: on a machine shared with other work the
wall clock measures the neighbours too.

Then the adversarial shapes (``--adversarial-mb``, 2 MB by default; 0 skips them): one sentence
of that size without a full stop, ~100k tiny sentences, and one sentence holding ~10k
negation/uncertainty cues, each timed at full size and at 1/8 of it; the cost ratio is linear at
8. Every repeat of the text is numbered, so the per-sentence caches cannot hide the cost.
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


def measure(schema_name: str, texts: list[str], n: int) -> tuple[float, float]:
    """Reports per second for ``n`` reports cycled from ``texts`` (best of three runs): by the
    wall clock, and by the process's CPU time (what the code costs on one core even when other
    work shares the machine)."""
    extractor = make_extractor("rules", get_schema(schema_name))
    reports = [ReportInput(report_id=str(i), text=texts[i % len(texts)]) for i in range(n)]
    extractor.extract_batch(reports[:50])  # warm-up: regex compilation, imports
    wall = cpu = float("inf")
    for _ in range(3):
        clear_sentence_caches()
        start, start_cpu = time.perf_counter(), time.process_time()
        extractor.extract_batch(reports)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return n / wall, n / cpu


# Text repeated to build the adversarial reports: "{i}" is replaced by the repeat's number.
_RUN_ON: dict[str, str] = {
    "cxr": "no evidence of pleural effusion {i} or pneumothorax or focal consolidation, ",
    "mammo": "right breast no suspicious mass {i} or calcifications, left axillary node enlarged, ",
    "ccta": "the proximal LAD {i} has mild plaque with 30% stenosis, RCA and LCx normal, ",
}
_TINY: dict[str, str] = {
    "cxr": "No effusion {i}. ",
    "mammo": "No mass {i}. ",
    "ccta": "LAD {i} normal. ",
}
# Two cues a repeat: "no" and "possible" (ccta also reads "no"/"possible" through the scope).
_TRIGGERS: dict[str, str] = {
    "cxr": "no edema {i}, possible effusion, ",
    "mammo": "no mass {i}, possible calcification, ",
    "ccta": "no plaque {i}, possible stenosis, ",
}


def _repeat(unit: str, chars: int) -> str:
    """``unit`` repeated (each repeat numbered) up to ``chars`` characters."""
    parts: list[str] = []
    total = i = 0
    while total < chars:
        part = unit.replace("{i}", str(i))
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)[:chars]


def _time_one(schema_name: str, text: str) -> float:
    """CPU seconds to extract one report of ``text`` with cold caches (status checked)."""
    extractor = make_extractor("rules", get_schema(schema_name))
    clear_sentence_caches()
    start = time.process_time()
    (result,) = extractor.extract_batch([ReportInput(report_id="adversarial", text=text)])
    seconds = time.process_time() - start
    if result.status != "ok":
        raise SystemExit(f"adversarial report gave status {result.status}: {result.error}")
    return seconds


def adversarial(schema_name: str, megabytes: float) -> None:
    """Print the time and growth ratio (full size vs 1/8) of each adversarial shape."""
    full = int(megabytes * 1_000_000)
    shapes = {
        f"one {megabytes:g} MB sentence": lambda n: _repeat(_RUN_ON[schema_name], n),
        "tiny sentences": lambda n: _repeat(_TINY[schema_name], n),
        "10k cues in one sentence": lambda n: _repeat(_TRIGGERS[schema_name], n),
    }
    # the cue shape is sized by its cue count (two a repeat), not by megabytes
    cue_chars = 5_000 * len(_TRIGGERS[schema_name].replace("{i}", "9999"))
    print(
        "  adversarial shapes (one report each, CPU time; cost ratio full vs 1/8 size, linear = 8):"
    )
    for name, make in shapes.items():
        n = cue_chars if name.startswith("10k") else full
        text_small, text_full = make(n // 8), make(n)
        small, big = _time_one(schema_name, text_small), _time_one(schema_name, text_full)
        extra = f", {text_full.count('. '):,} sentences" if name == "tiny sentences" else ""
        print(
            f"    {name}: {len(text_full):,} chars{extra}: {big:.2f} s "
            f"({len(text_full) / big / 1e6:.2f} MB/s), cost ratio {big / small:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", default="cxr", choices=["cxr", "mammo", "ccta"])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument(
        "--adversarial-mb",
        type=float,
        default=2.0,
        help="size of the adversarial reports in MB (0: skip them)",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    texts = load_texts(args.schema)
    mean_chars = sum(map(len, texts)) / len(texts)
    base, base_cpu = measure(args.schema, texts, args.reports)
    print(f"schema={args.schema} reports={args.reports} mean_chars={mean_chars:.0f} (one core)")
    target = "  target >= 2,000" if args.schema == "cxr" else ""
    print(
        f"  throughput: {base:,.0f} reports/s  ({1e6 / base:,.0f} µs/report); "
        f"by CPU time {base_cpu:,.0f} reports/s{target}"
    )
    print("  length growth (k different reports joined; cost ratio vs k=1, linear = k):")
    for k in (2, 4, 8):
        longer = [
            "\n\n".join(texts[(i + j) % len(texts)] for j in range(k)) for i in range(len(texts))
        ]
        rate, rate_cpu = measure(args.schema, longer, max(args.reports // k, 100))
        print(
            f"    k={k}: {rate:,.0f} reports/s, cost ratio {base / rate:.2f} "
            f"(by CPU time {base_cpu / rate_cpu:.2f})"
        )
    if args.adversarial_mb > 0:
        adversarial(args.schema, args.adversarial_mb)


if __name__ == "__main__":
    main()
