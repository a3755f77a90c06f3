"""Sparse answers (prompt template 2): the model writes only the labels that differ from the default.

A CXR report usually affirms or denies two or three of 14 findings; writing all 14 costs ~150
tokens per answer, most of them ``"not_mentioned"``. A sparse answer keeps the schema's field
order and drops every field (and, for per-key fields such as ``birads`` per breast, every key)
whose value equals the schema default, e.g. ``{"Cardiomegaly":"positive","Pleural
Effusion":"negative"}``; ``{}`` means "everything default". :func:`fill_defaults` restores the
full labels before the schema validates them, so the rest of RRIEF only ever sees full labels.

:func:`sparse_json_schema` is the JSON Schema for constrained decoding: every property optional,
none twice, extra keys forbidden. The engine's decoder also keeps the schema order
(``constrained.py``), so a constrained answer is exactly what training taught.
"""

from __future__ import annotations

import json
from typing import Any

from extractors.schemas import LabelValidationError, SchemaSpec


def sparse_labels(schema: SchemaSpec, labels: dict[str, Any]) -> dict[str, Any]:
    """The non-default part of (valid) ``labels``, in schema order."""
    full = schema.validate_labels(labels)
    out: dict[str, Any] = {}
    for f in schema.fields:
        default = schema.default_value(f)
        value = full[f.name]
        if schema.keys_for(f):
            kept = {k: v for k, v in value.items() if v != default}
            if kept:
                out[f.name] = kept
        elif value != default:
            out[f.name] = value
    return out


def sparse_json(schema: SchemaSpec, labels: dict[str, Any]) -> str:
    """Compact JSON of :func:`sparse_labels`: the template-2 training answer."""
    return json.dumps(sparse_labels(schema, labels), ensure_ascii=False, separators=(",", ":"))


def fill_defaults(schema: SchemaSpec, sparse: Any) -> dict[str, Any]:
    """Full labels from a sparse answer: absent fields and keys take the schema default.

    Unknown fields stay in the result so that :meth:`SchemaSpec.validate_labels` refuses them
    (nothing is silently dropped); a per-key field given as a non-object is kept as given for
    the same reason.
    """
    if not isinstance(sparse, dict):
        raise LabelValidationError(
            schema.id, [f"a sparse answer must be an object, got {type(sparse).__name__}"]
        )
    full = schema.empty_labels()
    for name, value in sparse.items():
        if name in full and isinstance(full[name], dict) and isinstance(value, dict):
            full[name] = {**full[name], **value}
        else:
            full[name] = value
    return full


def _refuse_repeats(known: set[str]) -> Any:
    """An ``object_pairs_hook`` that refuses a key given twice (json keeps the last silently)."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:  # a known name is shown; other keys are model output, not shown
                raise ValueError(
                    f"{key!r} appears twice" if key in known else "a key appears twice"
                )
            seen[key] = value
        return seen

    return hook


def parse_sparse(schema: SchemaSpec, text: str) -> dict[str, Any]:
    """Sparse JSON answer → validated full labels.

    Raises ``json.JSONDecodeError`` for text that is not JSON, :class:`LabelValidationError`
    for a repeated key, an unknown field or a value the schema does not allow.
    """
    try:
        known = {*schema.field_names, *(k for f in schema.fields for k in schema.keys_for(f) or ())}
        data = json.loads(text, object_pairs_hook=_refuse_repeats(known))
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise LabelValidationError(schema.id, [str(exc)]) from None
    return schema.validate_labels(fill_defaults(schema, data))


def sparse_json_schema(schema: SchemaSpec) -> dict[str, Any]:
    """The schema's JSON Schema with nothing required (sparse answers), extra keys still forbidden."""
    full = schema.json_schema()

    def optional(node: dict[str, Any]) -> dict[str, Any]:
        if node.get("type") != "object":
            return node
        out = {k: v for k, v in node.items() if k != "required"}
        out["properties"] = {k: optional(v) for k, v in node["properties"].items()}
        return out

    out = optional(full)
    out["$id"] = f"urn:rrief:schema:{schema.id}:sparse"
    return out
