"""Report schema specifications: what a report type's labels look like.

A schema is declared in a YAML/JSON file (see ``builtin/``) and parsed into :class:`SchemaSpec`.
The spec is the single source of truth: it builds the pydantic model that validates labels,
the JSON Schema used for constrained decoding, and the prompt description of the fields.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from extractors.io.redact import looks_like_column_name

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _\-/()]*$")

FieldKind = Literal["enum", "enum_list", "string", "integer", "boolean"]


class SchemaError(ValueError):
    """A schema file is malformed or refers to something it does not declare."""


class LabelValidationError(ValueError):
    """Labels do not conform to their schema; ``errors`` lists each problem as one line."""

    def __init__(self, schema_id: str, errors: list[str]) -> None:
        self.schema_id = schema_id
        self.errors = errors
        super().__init__(f"labels do not match schema {schema_id}: " + "; ".join(errors))


class FieldSpec(BaseModel):
    """One label field: its type, allowed values and whether it repeats per key (breast, vessel)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: FieldKind = "enum"
    values: list[str] | None = None
    enum: str | None = Field(default=None, description="name of a shared enum in the schema")
    per: str | None = Field(default=None, description="name of a key set: one value per key")
    nullable: bool = False
    default: Any = None
    description: str = ""

    @field_validator("values", mode="before")
    @classmethod
    def _values_are_strings(cls, values: Any) -> Any:
        if isinstance(values, list) and any(not isinstance(v, str) for v in values):
            bad = [v for v in values if not isinstance(v, str)]
            raise ValueError(
                f"values must be strings, got {bad!r}: quote YAML words such as yes/no/on/off "
                "and numbers (e.g. '4', 'yes')"
            )
        return values

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if not _FIELD_RE.match(self.name) or "." in self.name:
            raise ValueError(f"field name {self.name!r} must be letters, digits, space, _ - / ( )")
        if self.kind in ("enum", "enum_list") and not (self.values or self.enum):
            raise ValueError(f"field {self.name!r} of kind {self.kind} needs `values` or `enum`")
        if self.values and self.enum:
            raise ValueError(f"field {self.name!r}: give `values` or `enum`, not both")
        return self


class SchemaSpec(BaseModel):
    """A versioned report schema, identified as ``name@version`` (e.g. ``cxr@1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int
    title: str
    description: str = ""
    modalities: list[str] = Field(default_factory=list)
    enums: dict[str, list[str]] = Field(default_factory=dict)
    keysets: dict[str, list[str]] = Field(default_factory=dict)
    fields: list[FieldSpec]
    semantics: str = Field(default="", description="label semantics, shown in docs and prompts")

    @model_validator(mode="after")
    def _check(self) -> SchemaSpec:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"schema name {self.name!r} must match {_NAME_RE.pattern}")
        if self.version < 1:
            raise ValueError("schema version must be >= 1")
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                raise ValueError(f"field {f.name!r} declared twice")
            seen.add(f.name)
            if f.enum and f.enum not in self.enums:
                raise ValueError(f"field {f.name!r} refers to unknown enum {f.enum!r}")
            if f.per and f.per not in self.keysets:
                raise ValueError(f"field {f.name!r} refers to unknown key set {f.per!r}")
            allowed = self.allowed_values(f)
            if f.default is not None and allowed is not None:
                defaults = f.default if isinstance(f.default, list) else [f.default]
                bad = [d for d in defaults if d not in allowed]
                if bad:
                    raise ValueError(f"field {f.name!r}: default {bad} not in its values")
        if not self.fields:
            raise ValueError("a schema needs at least one field")
        return self

    # -- identity --------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.id} has no field {name!r}")

    def allowed_values(self, f: FieldSpec) -> list[str] | None:
        if f.values:
            return list(f.values)
        if f.enum:
            return list(self.enums[f.enum])
        return None

    def keys_for(self, f: FieldSpec) -> list[str] | None:
        return list(self.keysets[f.per]) if f.per else None

    # -- empty / default labels --------------------------------------------------------------
    def default_value(self, f: FieldSpec) -> Any:
        if f.default is not None:
            return list(f.default) if isinstance(f.default, list) else f.default
        if f.kind == "enum_list":
            return []
        return None

    def empty_labels(self) -> dict[str, Any]:
        """Labels with every field at its default (e.g. ``not_mentioned``), in schema order."""
        out: dict[str, Any] = {}
        for f in self.fields:
            keys = self.keys_for(f)
            if keys:
                out[f.name] = {k: self.default_value(f) for k in keys}
            else:
                out[f.name] = self.default_value(f)
        return out

    # -- validation --------------------------------------------------------------------------
    @cached_property
    def label_model(self) -> type[BaseModel]:
        """A pydantic model that validates a labels object for this schema (extra keys forbidden)."""
        definitions: dict[str, Any] = {}
        for i, f in enumerate(self.fields):
            value_type = self._python_type(f)
            keys = self.keys_for(f)
            if keys:
                sub_fields = {f"k{j}": (value_type, Field(alias=k)) for j, k in enumerate(keys)}
                value_type = create_model(  # type: ignore[call-overload]
                    f"{self.name}_{i}_per_{f.per}",
                    __config__=ConfigDict(extra="forbid", populate_by_name=False),
                    **sub_fields,
                )
            definitions[f"f{i}"] = (value_type, Field(alias=f.name))
        return create_model(  # type: ignore[call-overload]
            f"{self.name.title()}V{self.version}Labels",
            __config__=ConfigDict(extra="forbid", populate_by_name=False),
            **definitions,
        )

    def _python_type(self, f: FieldSpec) -> Any:
        allowed = self.allowed_values(f)
        base: Any
        if f.kind == "enum":
            base = Literal[tuple(allowed)]  # type: ignore[misc,index]
        elif f.kind == "enum_list":
            base = list[Literal[tuple(allowed)]]  # type: ignore[misc,index]
        elif f.kind == "string":
            base = str
        elif f.kind == "integer":
            base = int
        else:
            base = bool
        return base | None if f.nullable else base

    def validate_labels(self, labels: Any) -> dict[str, Any]:
        """Validate labels and return them in canonical form (schema key order).

        Raises :class:`LabelValidationError` with one readable line per problem.
        """
        if not isinstance(labels, dict):
            raise LabelValidationError(
                self.id, [f"labels must be an object, got {type(labels).__name__}"]
            )
        try:
            model = self.label_model.model_validate(labels)
        except ValidationError as exc:
            errors = []
            for err in exc.errors(include_input=False, include_url=False):
                # an unknown key is data from the file: shown only when it looks like a name
                parts = [self._shown_key(p) for p in err["loc"]]
                errors.append(f"{'.'.join(parts)}: {err['msg']}")
            raise LabelValidationError(self.id, errors) from None
        dumped = model.model_dump(by_alias=True)
        return self.canonical(dumped)

    def _shown_key(self, part: str | int) -> str:
        """A location part for a message: field names, keys and list positions as they are; an
        unknown key (data from the input) only when it looks like a name."""
        known = {*self.field_names, *(k for f in self.fields for k in self.keys_for(f) or ())}
        if isinstance(part, int) or part in known or looks_like_column_name(str(part)):
            return str(part)
        return "(an unknown key)"

    def canonical(self, labels: dict[str, Any]) -> dict[str, Any]:
        """Order keys as the schema declares them (the fixed order used for training targets)."""
        out: dict[str, Any] = {}
        for f in self.fields:
            value = labels[f.name]
            keys = self.keys_for(f)
            if keys:
                value = {k: self._canonical_value(f, value[k]) for k in keys}
            else:
                value = self._canonical_value(f, value)
            out[f.name] = value
        return out

    def _canonical_value(self, f: FieldSpec, value: Any) -> Any:
        if f.kind == "enum_list" and isinstance(value, list):
            order = self.allowed_values(f) or []
            return sorted(set(value), key=order.index)
        return value

    def canonical_json(self, labels: dict[str, Any]) -> str:
        """Compact JSON of validated labels in schema order: the LLM's training target."""
        return json.dumps(self.validate_labels(labels), ensure_ascii=False, separators=(",", ":"))

    # -- JSON Schema -------------------------------------------------------------------------
    def json_schema(self) -> dict[str, Any]:
        """A self-contained JSON Schema (no ``$ref``) for the labels object.

        All properties are required and extra keys are forbidden, so a decoder constrained by
        it can only emit labels that :meth:`validate_labels` accepts.
        """
        props: dict[str, Any] = {}
        for f in self.fields:
            value_schema = self._value_json_schema(f)
            keys = self.keys_for(f)
            if keys:
                value_schema = {
                    "type": "object",
                    "properties": {k: value_schema for k in keys},
                    "required": keys,
                    "additionalProperties": False,
                }
            if f.description:
                value_schema = {**value_schema, "description": f.description}
            props[f.name] = value_schema
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:rrief:schema:{self.id}",
            "title": self.title,
            "description": self.description,
            "type": "object",
            "properties": props,
            "required": self.field_names,
            "additionalProperties": False,
        }

    def _value_json_schema(self, f: FieldSpec) -> dict[str, Any]:
        allowed = self.allowed_values(f)
        schema: dict[str, Any]
        if f.kind == "enum":
            schema = {"type": "string", "enum": list(allowed or [])}
        elif f.kind == "enum_list":
            schema = {
                "type": "array",
                "items": {"type": "string", "enum": list(allowed or [])},
                "uniqueItems": True,
            }
        elif f.kind == "string":
            schema = {"type": "string"}
        elif f.kind == "integer":
            schema = {"type": "integer"}
        else:
            schema = {"type": "boolean"}
        if f.nullable:
            if "enum" in schema:
                schema = {"anyOf": [schema, {"type": "null"}]}
            else:
                schema = {**schema, "type": [schema["type"], "null"]}
        return schema

    # -- prompt text ---------------------------------------------------------------------------
    def describe(self) -> str:
        """A compact, stable, human-readable description of the fields (used in prompts/docs)."""
        lines = [f"{self.title} ({self.id}). {self.description}".strip()]
        for f in self.fields:
            allowed = self.allowed_values(f)
            kind = f.kind if allowed is None else ("one of " if f.kind == "enum" else "list of ")
            vals = "|".join(allowed) if allowed else ""
            per = f" per {f.per} ({', '.join(self.keysets[f.per])})" if f.per else ""
            null = " or null" if f.nullable else ""
            desc = f": {f.description}" if f.description else ""
            lines.append(f"- {f.name}{per}: {kind}{vals}{null}{desc}")
        return "\n".join(lines)
