"""Turn the public development sets into ``rrief extract`` input (JSONL: report_id, text).

Open-i reports become ``FINDINGS: ...`` / ``IMPRESSION: ...`` text exactly as ``rrief extract
--text-col findings --text-col impression`` builds it; CDD-CESM rows get their breast side as a
header (see :mod:`extractors.evaluate.cddcesm`), so ids match the gold adapters of ``rrief
evaluate``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from extractors.evaluate.cddcesm import load_cddcesm
from extractors.io.readers import join_text_columns

DATASETS = ("openi", "cddcesm")


def openi_reports(path: Path) -> Iterator[dict[str, str]]:
    """Open-i ``reports.csv`` rows as ``{report_id, text}`` (findings + impression only)."""
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = join_text_columns(
                {"findings": row.get("findings") or "", "impression": row.get("impression") or ""}
            )
            yield {"report_id": row["uid"], "text": text}


def cddcesm_reports(path: Path) -> Iterator[dict[str, str]]:
    """CDD-CESM breast rows as ``{report_id, text}`` with ids like ``5L``."""
    for row in load_cddcesm(path):
        yield {"report_id": row["report_id"], "text": row["text"]}


def export(dataset: str, source: Path, output: Path) -> int:
    """Write ``dataset`` read from ``source`` as JSONL to ``output``; returns the line count."""
    rows = openi_reports(source) if dataset == "openi" else cddcesm_reports(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with output.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
