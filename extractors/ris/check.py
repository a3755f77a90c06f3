"""Dry run of a RIS feed: read a window, write nothing, and say what a fetch would load.

:func:`check_feed` consumes a connector's ``fetch(start, end)`` and counts records by report
type, status, time/id/text source and flag, errors by reason, and the exams the site mapping
does not cover. The summary holds locators, field names, codes and lengths only; report text is
kept apart (``texts``) and only when asked for, so the summary can be printed or dumped as JSON.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field

from extractors.ris.base import ReportRecord, RISConnector, RISRecordError
from extractors.ris.mapping import ExamMapper

# positions and lengths in error reasons ("line 9 (40 bytes)") vary per error: fold them
_POSITIONS = re.compile(r"\b(line|message|segment|OBX|entry|page) \d+")
_LENGTHS = re.compile(r"\b\d+(?= (characters|bytes|line|more|such))")


def fold_reason(reason: str) -> str:
    """``line 9 (40 bytes) ...`` → ``line N (N bytes) ...``: one group per kind of error."""
    return _LENGTHS.sub("N", _POSITIONS.sub(lambda m: f"{m.group(1)} N", reason))


class RecordLine(BaseModel):
    """One parsed record as the check shows it: where, what, how long. Never the text."""

    locator: str
    report_type: str | None
    modality: str
    status: str
    chars: int
    time_source: str | None
    flags: list[str] = Field(default_factory=list)


class ErrorGroup(BaseModel):
    """Errors of one reason (positions and lengths folded, so they do not split groups)."""

    reason: str
    count: int
    first: str = Field(description="locator of the first error of this kind")


class UnmappedLine(BaseModel):
    """An exam the site mapping does not name, how often, and what the built-ins made of it."""

    code: str
    name: str
    outcome: str
    count: int


class CheckSummary(BaseModel):
    """What ``rrief ris check`` reports (safe to print: no report text, no patient ids)."""

    source: str
    start: datetime
    end: datetime
    parsed: int = 0
    errors: int = 0
    by_report_type: dict[str, int] = Field(default_factory=dict)
    by_status: dict[str, int] = Field(default_factory=dict)
    by_time_source: dict[str, int] = Field(default_factory=dict)
    by_id_source: dict[str, int] = Field(default_factory=dict)
    by_text_source: dict[str, int] = Field(default_factory=dict)
    by_flag: dict[str, int] = Field(default_factory=dict)
    error_reasons: list[ErrorGroup] = Field(default_factory=list)
    unmapped_exams: list[UnmappedLine] = Field(default_factory=list)
    ignored_by_mapping: dict[str, int] = Field(default_factory=dict)
    mapping_file: str = ""
    records: list[RecordLine] = Field(default_factory=list, description="the first --show")


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def check_feed(
    connector: RISConnector,
    start: datetime,
    end: datetime,
    *,
    show: int = 5,
    keep_text: bool = False,
    items: Iterable[ReportRecord | RISRecordError] | None = None,
) -> tuple[CheckSummary, list[str]]:
    """Summarize ``connector.fetch(start, end)`` (or ``items``, e.g. the same wrapped in a
    progress bar). Returns the summary and, only with ``keep_text``, the texts of the shown
    records."""
    summary = CheckSummary(source=connector.source, start=start, end=end)
    counters: dict[str, Counter[str]] = {
        name: Counter() for name in ("type", "status", "time", "id", "text", "flag")
    }
    reasons: dict[str, ErrorGroup] = {}
    texts: list[str] = []
    for item in items if items is not None else connector.fetch(start, end):
        if isinstance(item, RISRecordError):
            summary.errors += 1
            key = fold_reason(item.reason)
            group = reasons.setdefault(key, ErrorGroup(reason=key, count=0, first=item.locator))
            group.count += 1
            continue
        summary.parsed += 1
        counters["type"][item.report_type or "(none)"] += 1
        counters["status"][item.result_status] += 1
        counters["time"][item.time_source or "(unknown)"] += 1
        counters["id"][item.id_source or "(unknown)"] += 1
        counters["text"][item.text_source or "(unknown)"] += 1
        for flag in item.flags:
            counters["flag"][flag] += 1
        if len(summary.records) < show:
            summary.records.append(
                RecordLine(
                    locator=item.locator or "",
                    report_type=item.report_type,
                    modality=item.modality,
                    status=item.result_status,
                    chars=len(item.text),
                    time_source=item.time_source,
                    flags=sorted(item.flags),
                )
            )
            if keep_text:
                texts.append(item.text)
    summary.by_report_type = _sorted(counters["type"])
    summary.by_status = _sorted(counters["status"])
    summary.by_time_source = _sorted(counters["time"])
    summary.by_id_source = _sorted(counters["id"])
    summary.by_text_source = _sorted(counters["text"])
    summary.by_flag = _sorted(counters["flag"])
    summary.error_reasons = sorted(reasons.values(), key=lambda g: (-g.count, g.reason))
    exams = getattr(connector, "exams", None)
    if isinstance(exams, ExamMapper):
        summary.mapping_file = exams.path
        summary.ignored_by_mapping = _sorted(exams.ignored)
        summary.unmapped_exams = [
            UnmappedLine(code=e.code, name=e.name, outcome=e.outcome, count=n)
            for e, n in sorted(exams.unmapped.items(), key=lambda kv: (-kv[1], kv[0].code))
        ]
    return summary, texts
