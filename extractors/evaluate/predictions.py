"""Read an ``rrief extract`` result file for scoring, keeping count of every unusable line.

Lines with ``status: error``, labels that fail the schema, and unparseable lines are kept as
*errors* (they score as misses); nothing is dropped without being counted and reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractors.io.redact import shown_value
from extractors.schemas import LabelValidationError, SchemaSpec


class PredictionFileError(ValueError):
    """The prediction file as a whole cannot be scored (missing, wrong schema, duplicate ids)."""


@dataclass
class PredictionSet:
    """Valid labels by report id, error messages by report id, and lines without a usable id."""

    path: Path
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unattributed: list[str] = field(default_factory=list)
    lines: int = 0

    def ids(self) -> set[str]:
        return set(self.labels) | set(self.errors)


def load_predictions(path: Path, schema: SchemaSpec) -> PredictionSet:
    """Parse ``path`` (JSONL of extraction results) against ``schema``.

    Raises :class:`PredictionFileError` if the file is missing, holds results of another schema
    (name or version) or repeats a report id — cases where any score would be misleading.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"prediction file {path} does not exist")
    out = PredictionSet(path=path)
    first_line: dict[str, int] = {}
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            out.lines += 1
            try:
                _read_line(out, line, lineno, schema, first_line)
            except RecursionError:  # a line nested ~1,000 deep: unreadable, the rest is scored
                out.unattributed.append(f"{path.name} line {lineno}: JSON nested too deeply")
    return out


def _read_line(
    out: PredictionSet, line: str, lineno: int, schema: SchemaSpec, first_line: dict[str, int]
) -> None:
    """Add one line to ``out``: labels, an error by report id, or an unattributed problem."""
    path = out.path
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        out.unattributed.append(f"{path.name} line {lineno}: not valid JSON ({exc.msg})")
        return
    if not isinstance(record, dict):
        out.unattributed.append(f"{path.name} line {lineno}: not a JSON object")
        return
    _check_schema(record, schema, path, lineno)
    rid = record.get("report_id")
    if isinstance(rid, bool) or not isinstance(rid, str | int | float | None):
        out.unattributed.append(f"{path.name} line {lineno}: report_id is not a string or number")
        return
    if rid is None or str(rid).strip() == "":
        out.unattributed.append(f"{path.name} line {lineno}: no report_id")
        return
    rid = str(rid)
    if rid in first_line:
        raise PredictionFileError(
            f"{path} line {lineno}: its report_id appears twice (first on line "
            f"{first_line[rid]}; ambiguous scores)"
        )
    first_line[rid] = lineno
    status = record.get("status")
    if status == "error":
        message = record.get("error")
        out.errors[rid] = f"error line: {message if isinstance(message, str) else 'no message'}"
        return
    if status != "ok":
        shown = status if status in (None, True, False) else shown_value(status)
        out.errors[rid] = f"line {lineno}: status {shown} is neither ok nor error"
        return
    try:
        out.labels[rid] = schema.validate_labels(record.get("labels"))
    except LabelValidationError as exc:
        out.errors[rid] = f"line {lineno}: invalid labels ({'; '.join(exc.errors[:3])})"


def _check_schema(record: dict[str, Any], schema: SchemaSpec, path: Path, lineno: int) -> None:
    name = record.get("schema")
    version = record.get("schema_version")
    if name is not None and name != schema.name:
        raise PredictionFileError(
            f"{path} line {lineno} holds results of schema {shown_value(name)}, not {schema.name!r}; "
            "pass the matching --schema"
        )
    if version is not None and version != schema.version:
        raise PredictionFileError(
            f"{path} line {lineno} holds results of {schema.name}@{shown_value(version)}, not "
            f"{schema.id}; pass the matching --schema"
        )
