"""Scoring a candidate on the frozen test split against the current extractor and the rules.

Each system extracts the test snapshot's reports into a result JSONL (the ``rrief extract``
format); :func:`extractors.evaluate.command.run_evaluation` then scores the candidate with
``--compare`` against the current extractor (paired bootstrap per label and per aggregate), and
the rules alone for a reference column. The gate (:mod:`extractors.lifecycle.gate`) decides on
the comparison rows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractors.evaluate.command import run_evaluation
from extractors.extract.base import Extractor
from extractors.gold import load_examples
from extractors.io.writers import JsonlWriter
from extractors.results import ReportInput
from extractors.schemas import SchemaSpec

log = logging.getLogger("rrief.lifecycle")


class Comparison(BaseModel):
    """What the gate needs: the paired rows, the rules' scores, where the files are."""

    current: str
    comparison_rows: list[dict[str, Any]]
    rules_scores: dict[str, float | None]  # "label|metric" -> score (JSON keys are strings)
    predictions: dict[str, str]
    n_test: int

    def rules_by_key(self) -> dict[tuple[str, str], float | None]:
        return {tuple(k.split("|", 1)): v for k, v in self.rules_scores.items()}  # type: ignore[misc]


def write_predictions(
    extractor: Extractor, schema: SchemaSpec, test_path: Path, out: Path, batch_size: int = 16
) -> Path:
    """Extract every report of the gold file ``test_path`` with ``extractor`` into ``out``."""
    examples, _ = load_examples(test_path, schema, "jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    with JsonlWriter(out) as writer:
        for i in range(0, len(examples), batch_size):
            part = examples[i : i + batch_size]
            for result in extractor.extract_batch(
                [ReportInput(report_id=e.report_id, text=e.text) for e in part]
            ):
                writer.write(result)
    log.info("%s: %d test reports extracted with %s", out.name, len(examples), extractor.version)
    return out


def compare(
    schema: SchemaSpec,
    test_path: Path,
    candidate: Path,
    current: Path,
    rules: Path,
    current_name: str,
    resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Candidate vs current (paired) and the rules' own scores, on the test snapshot."""
    paired = run_evaluation(
        schema.id,
        candidate,
        test_path,
        "jsonl",
        compare_path=current,
        resamples=resamples,
        seed=seed,
    )
    rules_rows = run_evaluation(
        schema.id, rules, test_path, "jsonl", compare_path=candidate, resamples=0, seed=seed
    )["comparison"]["rows"]
    return Comparison(
        current=current_name,
        comparison_rows=json.loads(json.dumps(paired["comparison"]["rows"])),
        rules_scores={f"{r['label']}|{r['metric']}": r["a"] for r in rules_rows},
        predictions={"candidate": str(candidate), "current": str(current), "rules": str(rules)},
        n_test=int(paired["gold"]["reports"]),
    )
