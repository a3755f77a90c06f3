"""Stream reports from a file through an extractor into a JSONL file, in input order."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from extractors.extract.base import Extractor
from extractors.io.readers import DUPLICATE_FLAG, InputProblem
from extractors.io.writers import JsonlWriter
from extractors.results import ExtractionResult, ReportInput

log = logging.getLogger("rrief.extract")
T = TypeVar("T")


@dataclass(frozen=True)
class RunSummary:
    """Counts of one extraction run, for logs and the CLI's last line."""

    total: int
    ok: int
    errors: int
    seconds: float
    duplicates: int = 0  # results whose report id an earlier input line already had

    @property
    def per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else float("inf")


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def extract_stream(
    extractor: Extractor, records: Iterable[ReportInput | InputProblem], batch_size: int = 32
) -> Iterator[ExtractionResult]:
    """Yield one result per input record (problems become error results), keeping order."""
    for chunk in _chunks(records, batch_size):
        reports = [r for r in chunk if isinstance(r, ReportInput)]
        results = iter(extractor.extract_batch(reports))
        for record in chunk:
            if isinstance(record, InputProblem):
                yield extractor.error_result(record.report_id, record.message)
            else:
                yield next(results)


def extract_file(
    extractor: Extractor,
    records: Iterable[ReportInput | InputProblem],
    output: Path,
    batch_size: int = 32,
    progress: bool = True,
) -> RunSummary:
    """Extract every record into ``output`` (written atomically) and return the counts."""
    start = time.perf_counter()
    duplicates = 0
    with (
        JsonlWriter(output) as writer,
        tqdm(desc=f"extract {extractor.schema.id}", unit="report", disable=not progress) as bar,
    ):
        for result in extract_stream(extractor, records, batch_size):
            writer.write(result)
            duplicates += DUPLICATE_FLAG in result.flags
            bar.update(1)
    seconds = time.perf_counter() - start
    summary = RunSummary(
        total=writer.counts["ok"] + writer.counts["error"],
        ok=writer.counts["ok"],
        errors=writer.counts["error"],
        seconds=seconds,
        duplicates=duplicates,
    )
    if duplicates:
        log.warning(
            "%d results repeat an earlier report id (flagged %s): the ids are not unique",
            duplicates,
            DUPLICATE_FLAG,
        )
    log.info(
        "extracted %d reports with %s (%d ok, %d errors) in %.1fs",
        summary.total,
        extractor.info.version,
        summary.ok,
        summary.errors,
        seconds,
    )
    return summary
