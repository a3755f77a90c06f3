"""Flatten extraction results into the pandas tables the expectation suites run on.

Flattening never judges: it records what is there (including unknown keys, wrong types and
missing paths) so that every problem is found by an expectation and reported with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from extractors.schemas import SchemaSpec
from extractors.validate.suites import finding_paths, label_paths

LABEL_COLUMNS = [
    "row",
    "report_id",
    "path",
    "value",
    "present",
    "nullable",
    "path_value",
    "path_type",
]
CONTAINER_MARK = " instead of a container"
EVIDENCE_COLUMNS = ["row", "report_id", "path", "start", "end", "text_len", "span_matches"]


class ValidationItem(BaseModel):
    """One extraction to validate: the labels and evidence, and the exact text extracted from."""

    model_config = ConfigDict(frozen=True)

    report_id: str
    text: str
    labels: dict[str, Any]
    evidence: dict[str, list[Any]] = Field(default_factory=dict)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _label_rows(schema: SchemaSpec, row: int, item: ValidationItem) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(path: str, value: Any, *, present: bool, nullable: bool, enum: bool) -> None:
        rows.append(
            {
                "row": row,
                "report_id": item.report_id,
                "path": path,
                "value": None if value is None else str(value),
                "present": int(present),
                "nullable": int(nullable),
                # enum membership is only asked of present, non-null string values
                "path_value": f"{path}={value}" if enum and isinstance(value, str) else None,
                "path_type": f"{path}:{_type_name(value)}" if value is not None else None,
            }
        )

    known_fields = {f.name for f in schema.fields}
    labels = item.labels
    for lp in label_paths(schema):
        f = lp.field
        container: Any = labels
        name = f.name
        if lp.key is not None:
            container = labels.get(f.name)
            name = lp.key
            if container is not None and not isinstance(container, Mapping):
                # the whole per-key object has the wrong type: report it once, on the field
                if lp.key == (schema.keys_for(f) or [None])[0]:
                    rows.append(_wrong_container(row, item.report_id, f.name, container))
                continue
            container = container or {}
        present = name in container
        value = container.get(name) if present else None
        enum = f.kind in ("enum", "enum_list")
        if f.kind == "enum_list" and present and isinstance(value, list):
            if not value:  # an empty list is a valid "none of them"
                add(lp.path, None, present=True, nullable=True, enum=True)
            for element in value:
                add(lp.path, element, present=True, nullable=False, enum=True)
            continue
        if f.kind == "enum_list" and present and value is not None:
            rows.append(_wrong_container(row, item.report_id, lp.path, value))
            continue
        add(lp.path, value, present=present, nullable=f.nullable, enum=enum)
    # keys the schema does not declare
    for name, value in labels.items():
        if name not in known_fields:
            rows.append(_unknown(row, item.report_id, name, value))
    for f in schema.fields:
        keys = schema.keys_for(f)
        sub = labels.get(f.name)
        if keys and isinstance(sub, Mapping):
            for key, value in sub.items():
                if key not in keys:
                    rows.append(_unknown(row, item.report_id, f"{f.name}.{key}", value))
    return rows


def _unknown(row: int, report_id: str, path: str, value: Any) -> dict[str, Any]:
    return {
        "row": row,
        "report_id": report_id,
        "path": path,
        "value": None if value is None else str(value),
        "present": 1,
        "nullable": 1,
        "path_value": None,
        "path_type": None,
    }


def _wrong_container(row: int, report_id: str, path: str, value: Any) -> dict[str, Any]:
    """A per-key field that is not an object, or a list field that is not a list."""
    rec = _unknown(row, report_id, path, value)
    rec["path_type"] = f"{path}:{_type_name(value)}{CONTAINER_MARK}"
    return rec


def labels_frame(schema: SchemaSpec, items: Sequence[ValidationItem]) -> pd.DataFrame:
    """Long table: one row per (report, label path), plus rows for undeclared keys."""
    rows = [r for i, item in enumerate(items) for r in _label_rows(schema, i, item)]
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def _span(raw: Any) -> tuple[int | None, int | None, str | None]:
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, Mapping):
        return None, None, None
    start, end, text = raw.get("start"), raw.get("end"), raw.get("text")
    ok_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end))
    if not ok_int:
        return None, None, text if isinstance(text, str) else None
    return start, end, text if isinstance(text, str) else None


def evidence_frame(items: Sequence[ValidationItem]) -> pd.DataFrame:
    """One row per evidence span; ``span_matches`` is 1 when text[start:end] is the quoted text."""
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        for path, spans in item.evidence.items():
            for raw in spans:
                start, end, quoted = _span(raw)
                matches = (
                    start is not None
                    and end is not None
                    and 0 <= start < end <= len(item.text)
                    and quoted is not None
                    and item.text[start:end] == quoted
                )
                rows.append(
                    {
                        "row": i,
                        "report_id": item.report_id,
                        "path": path,
                        # a span without integer offsets fails the range checks (-1)
                        "start": -1 if start is None else start,
                        "end": -1 if end is None else end,
                        "text_len": len(item.text),
                        "span_matches": int(matches),
                    }
                )
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


def label_value(labels: Mapping[str, Any], path: str) -> Any:
    """The value at ``field`` or ``field.key`` (None when absent)."""
    if path in labels:
        return labels[path]
    name, _, key = path.rpartition(".")
    sub = labels.get(name)
    return sub.get(key) if isinstance(sub, Mapping) else None


def prevalence_frame(schema: SchemaSpec, items: Sequence[ValidationItem]) -> pd.DataFrame:
    """One row per report, a 0/1 column per finding path (1 = a positive value)."""
    data: dict[str, list[Any]] = {
        "row": list(range(len(items))),
        "report_id": [it.report_id for it in items],
    }
    for fp in finding_paths(schema):
        data[fp.column] = [
            int(label_value(it.labels, fp.path) in fp.positive_values) for it in items
        ]
    return pd.DataFrame(data)
