"""``jsonl`` gold: full labels in the schema's own format, one report per line.

``{"report_id": ..., "text": ..., "labels": {...}}`` — the file ``rrief train`` trains on,
``rrief evaluate --gold-format jsonl`` scores against and ``rrief annotate export`` writes. For
four-state fields the CheXpert codes of public files (``"1.0"`` positive, ``"0.0"`` negative,
``"-1.0"`` uncertain, ``""`` not mentioned) are accepted too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from extractors.gold.base import FOUR_STATES, GoldError, GoldSet, existing
from extractors.schemas import LabelValidationError, SchemaSpec

CHEXPERT_CODES = {
    "1.0": "positive", "1": "positive", "0.0": "negative", "0": "negative",
    "-1.0": "uncertain", "-1": "uncertain", "": "not_mentioned",
}  # fmt: skip


def iter_gold_jsonl(
    path: Path | str, id_key: str = "report_id"
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(report id, "PATH line N", record)`` for each line of a gold JSONL file.

    Invalid or too deeply nested JSON, a line that is not an object, a missing id, an id that
    is not a string or number, or a repeated id raise :class:`GoldError` naming the line (never
    the id or the text).
    """
    path = existing(path)
    seen: dict[str, int] = {}
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GoldError(f"{where}: not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise GoldError(f"{where}: JSON nested too deeply to read") from None
            if not isinstance(record, dict):
                raise GoldError(f"{where}: not a JSON object")
            rid = record.get(id_key)
            if isinstance(rid, bool) or not isinstance(rid, str | int | float | None):
                raise GoldError(f"{where}: {id_key!r} must be a string or a number")
            if rid is None or str(rid).strip() == "":
                raise GoldError(f"{where}: no {id_key!r}")
            rid = str(rid)
            if rid in seen:
                raise GoldError(f"{where}: its {id_key} appears twice (first on line {seen[rid]})")
            seen[rid] = lineno
            yield rid, where, record


def validated_labels(
    record: dict[str, Any], where: str, rid: str, schema: SchemaSpec
) -> dict[str, Any]:
    """The record's ``labels``, CheXpert codes mapped and validated against ``schema``."""
    raw = record.get("labels")
    if not isinstance(raw, dict):
        raise GoldError(f"{where}: 'labels' must be an object")
    try:
        return schema.validate_labels(from_chexpert_codes(raw, schema))
    except LabelValidationError as exc:
        raise GoldError(f"{where}: {exc}") from None


def load_jsonl_gold(path: Path | str, schema: SchemaSpec, id_key: str = "report_id") -> GoldSet:
    """Read ``{"report_id", "text", "labels"}`` lines; labels must validate against ``schema``."""
    labels = {
        rid: validated_labels(record, where, rid, schema)
        for rid, where, record in iter_gold_jsonl(path, id_key)
    }
    if not labels:
        raise GoldError(f"{path} holds no gold records")
    return GoldSet(
        kind="labels",
        source=str(path),
        labels=labels,
        findings=list(schema.field_names),
        note=f"full {schema.id} labels: every class scored, not_mentioned/null as the blank class",
    )


def from_chexpert_codes(raw: dict[str, Any], schema: SchemaSpec) -> dict[str, Any]:
    """Map CheXpert numeric codes to state names on fields whose values are the four states."""
    out = dict(raw)
    for f in schema.fields:
        if tuple(schema.allowed_values(f) or ()) != FOUR_STATES or schema.keys_for(f):
            continue
        value = out.get(f.name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{float(value):.1f}"
        if isinstance(value, str) and value.strip() in CHEXPERT_CODES:
            out[f.name] = CHEXPERT_CODES[value.strip()]
        elif value is None and f.name in out:
            out[f.name] = "not_mentioned"
    return out
