"""Read an ``rrief extract`` result file for scoring, keeping count of every unusable line.

Lines with ``status: error``, labels that fail the schema, and unparseable lines are kept as
*errors* (they score as misses); nothing is dropped without being counted and reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            out.lines += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                out.unattributed.append(f"{path.name} line {lineno}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                out.unattributed.append(f"{path.name} line {lineno}: not a JSON object")
                continue
            _check_schema(record, schema, path, lineno)
            rid = record.get("report_id")
            if rid is None or str(rid).strip() == "":
                out.unattributed.append(f"{path.name} line {lineno}: no report_id")
                continue
            rid = str(rid)
            if rid in out.labels or rid in out.errors:
                raise PredictionFileError(
                    f"{path} line {lineno}: report_id {rid!r} appears twice (ambiguous scores)"
                )
            status = record.get("status")
            if status == "error":
                out.errors[rid] = f"error line: {record.get('error') or 'no message'}"
                continue
            if status != "ok":
                out.errors[rid] = f"line {lineno}: status {status!r} is neither ok nor error"
                continue
            try:
                out.labels[rid] = schema.validate_labels(record.get("labels"))
            except LabelValidationError as exc:
                out.errors[rid] = f"line {lineno}: invalid labels ({'; '.join(exc.errors[:3])})"
    return out


def _check_schema(record: dict[str, Any], schema: SchemaSpec, path: Path, lineno: int) -> None:
    name = record.get("schema")
    version = record.get("schema_version")
    if name is not None and name != schema.name:
        raise PredictionFileError(
            f"{path} line {lineno} holds results of schema {name!r}, not {schema.name!r}; "
            "pass the matching --schema"
        )
    if version is not None and version != schema.version:
        raise PredictionFileError(
            f"{path} line {lineno} holds results of {schema.name}@{version}, not {schema.id}; "
            f"pass --schema {schema.name}@{version}"
        )
