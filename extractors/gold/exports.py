"""``rrief datasets export``: the public development sets as ``rrief extract`` input JSONL.

Open-i reports become ``FINDINGS: ...`` / ``IMPRESSION: ...`` text exactly as ``rrief extract
--text-col findings --text-col impression`` builds it; CDD-CESM rows get their breast side as a
header; so ids and texts match what the gold readers score.
"""

from __future__ import annotations

import json
from pathlib import Path

from extractors.gold.cddcesm import cddcesm_reports
from extractors.gold.openi import openi_reports

DATASETS = ("openi", "cddcesm")


def export(dataset: str, source: Path, output: Path) -> int:
    """Write ``dataset`` read from ``source`` as JSONL to ``output``; returns the line count."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose {', '.join(DATASETS)}")
    rows = openi_reports(source) if dataset == "openi" else cddcesm_reports(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with output.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
