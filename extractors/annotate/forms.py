"""The label form, generated from the schema: controls to render and the parser of what comes back.

Any schema works without code: an enum field is a row of radio buttons (a value per option, a
"not stated" option when it is nullable), a field that repeats per key (breast, vessel) is a
table with one such row per key, an ``enum_list`` is a row of checkboxes, strings and integers
are text inputs, booleans yes/no radios. Form names are ``L:<path>`` where the path is the
field name, or ``field.key`` for a per-key value (the same paths evidence uses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from extractors.schemas import FieldSpec, LabelValidationError, SchemaSpec

PREFIX = "L:"
NULL_LABEL = "not stated"
# Shortcut keys of the first ten options of a control, in order.
OPTION_KEYS = "1234567890"


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    key: str | None


@dataclass
class Control:
    """One value to answer: a field, or one key of a per-key field."""

    path: str
    name: str
    dom_id: str
    kind: str
    options: list[Option]
    label: str
    multiple: bool = False
    value: str | list[str] = ""
    prefill: str | list[str] = ""
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.value != self.prefill


@dataclass
class FieldGroup:
    """A schema field and its controls (one, or one per key)."""

    name: str
    description: str
    anchor: str
    per: str | None
    controls: list[Control] = field(default_factory=list)

    @property
    def options(self) -> list[Option]:
        return self.controls[0].options if self.controls else []

    @property
    def error(self) -> str | None:
        return next((c.error for c in self.controls if c.error), None)


def to_form_value(f: FieldSpec, value: Any) -> str | list[str]:
    """A label value as the form carries it."""
    if f.kind == "enum_list":
        return [str(v) for v in value or []]
    if value is None:
        return ""
    if f.kind == "boolean":
        return "true" if value else "false"
    return str(value)


def _options(schema: SchemaSpec, f: FieldSpec) -> list[Option]:
    if f.kind in ("enum", "enum_list"):
        values = [(v, v) for v in schema.allowed_values(f) or []]
    elif f.kind == "boolean":
        values = [("true", "yes"), ("false", "no")]
    else:
        return []
    if f.nullable and f.kind != "enum_list":
        values.append(("", NULL_LABEL))
    return [
        Option(value=v, label=label, key=OPTION_KEYS[i] if i < len(OPTION_KEYS) else None)
        for i, (v, label) in enumerate(values)
    ]


def anchor(schema: SchemaSpec, name: str) -> str:
    """The id of a field's entry on the guidelines page."""
    slug = "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()
    return f"{schema.name}-{slug}"


def build_form(
    schema: SchemaSpec,
    values: dict[str, Any],
    prefill: dict[str, Any],
    errors: dict[str, str] | None = None,
    raw: dict[str, str | list[str]] | None = None,
) -> list[FieldGroup]:
    """The controls for ``schema`` showing ``values`` (labels), with ``prefill`` beside them.

    ``raw`` (form values as posted) wins over ``values`` so that a refused form shows exactly
    what the annotator typed, next to the ``errors`` by path.
    """
    errors = errors or {}
    raw = raw or {}
    groups: list[FieldGroup] = []
    n = 0
    for f in schema.fields:
        keys = schema.keys_for(f)
        group = FieldGroup(f.name, f.description, anchor(schema, f.name), f.per)
        options = _options(schema, f)
        for key in keys or [None]:
            path = f.name if key is None else f"{f.name}.{key}"
            value = values.get(f.name) if key is None else (values.get(f.name) or {}).get(key)
            pre = prefill.get(f.name) if key is None else (prefill.get(f.name) or {}).get(key)
            shown = raw.get(path, to_form_value(f, value))
            if f.kind == "enum_list" and isinstance(shown, str):
                shown = [shown] if shown else []
            group.controls.append(
                Control(
                    path=path,
                    name=PREFIX + path,
                    dom_id=f"c{n}",
                    kind=f.kind,
                    options=options,
                    label=key or f.name,
                    multiple=f.kind == "enum_list",
                    value=shown,
                    prefill=to_form_value(f, pre),
                    error=errors.get(path),
                )
            )
            n += 1
        groups.append(group)
    return groups


def raw_values(schema: SchemaSpec, form: Any) -> dict[str, str | list[str]]:
    """The posted value of every control path (lists for enum_list)."""
    out: dict[str, str | list[str]] = {}
    for f in schema.fields:
        for key in schema.keys_for(f) or [None]:
            path = f.name if key is None else f"{f.name}.{key}"
            if f.kind == "enum_list":
                out[path] = list(form.getlist(PREFIX + path))
            elif PREFIX + path in form:
                out[path] = str(form.get(PREFIX + path))
    return out


def _parse_value(schema: SchemaSpec, f: FieldSpec, raw: str | list[str] | None) -> Any:
    """One posted value as a label value; ``ValueError`` with the message for the annotator."""
    if f.kind == "enum_list":
        allowed = schema.allowed_values(f) or []
        items = raw if isinstance(raw, list) else []
        bad = [v for v in items if v not in allowed]
        if bad:
            raise ValueError(f"{', '.join(bad)} not allowed; choose from {', '.join(allowed)}")
        return items
    if raw is None:
        raise ValueError("no value chosen")
    if isinstance(raw, list):
        raise ValueError("only one value allowed")
    if raw == "" and f.kind != "string":
        if f.nullable:
            return None
        raise ValueError("no value chosen")
    if f.kind == "enum":
        allowed = schema.allowed_values(f) or []
        if raw not in allowed:
            raise ValueError(f"{raw!r} is not one of {', '.join(allowed)}")
        return raw
    if f.kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
    if f.kind == "boolean":
        if raw not in ("true", "false"):
            raise ValueError("choose yes or no")
        return raw == "true"
    return None if raw == "" and f.nullable else raw


def parse_labels(
    schema: SchemaSpec, raw: dict[str, str | list[str]]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Labels from the posted values, or ``None`` and one error message per failing path."""
    labels: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in schema.fields:
        keys = schema.keys_for(f)
        if keys:
            labels[f.name] = {}
        for key in keys or [None]:
            path = f.name if key is None else f"{f.name}.{key}"
            try:
                value = _parse_value(schema, f, raw.get(path))
            except ValueError as exc:
                errors[path] = str(exc)
                continue
            if key is None:
                labels[f.name] = value
            else:
                labels[f.name][key] = value
    if errors:
        return None, errors
    try:
        return schema.validate_labels(labels), {}
    except LabelValidationError as exc:  # a guard: the checks above should have caught it
        return None, {"": "; ".join(exc.errors)}


def label_paths(schema: SchemaSpec) -> list[str]:
    """Every value path of the schema (fields, and ``field.key`` for per-key fields)."""
    return [
        f.name if key is None else f"{f.name}.{key}"
        for f in schema.fields
        for key in schema.keys_for(f) or [None]
    ]


def parse_evidence(
    schema: SchemaSpec, raw: str, text_length: int
) -> dict[str, list[tuple[int, int]]]:
    """The evidence field (JSON ``{path: [[start, end], ...]}``), checked against the schema's
    paths and the text; ``ValueError`` says what is wrong."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("evidence is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("evidence must map field paths to spans")
    paths = set(label_paths(schema))
    out: dict[str, list[tuple[int, int]]] = {}
    for path, spans in data.items():
        if path not in paths:
            raise ValueError(f"evidence for unknown field {path!r}")
        if not isinstance(spans, list):
            raise ValueError(f"evidence of {path!r} must be a list of [start, end]")
        clean: list[tuple[int, int]] = []
        for span in spans:
            ok = (
                isinstance(span, list)
                and len(span) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in span)
                and 0 <= span[0] < span[1] <= text_length
            )
            if not ok:
                raise ValueError(f"evidence span {span!r} of {path!r} is not inside the report")
            clean.append((span[0], span[1]))
        if clean:
            out[path] = sorted(set(clean))
    return out
