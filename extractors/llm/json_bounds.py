"""How long can a schema-valid answer be? A token budget derived from the JSON Schema.

Constrained decoding must never be cut off by ``max_new_tokens``: a truncated answer is
invalid JSON. :func:`max_compact_chars` computes the longest *compact* JSON text (no
whitespace) that the schema admits; :func:`max_new_tokens_for_schema` turns it into a token
budget that is safe for every tokenizer, because every generated token adds at least one
character. The in-process engine allows at most one whitespace character in a row (see
``constrained.py``) forbids whitespace outside strings, so its answers are compact: at most
``chars`` tokens plus the end-of-sequence token. The budget is ``2 * chars + 2``: the margin
covers servers whose guided decoding allows one whitespace character between tokens; a server
that allows unlimited whitespace can still exceed any budget (the openai backend then retries
and reports ``finish_reason=length``). Light module (no torch).
"""

from __future__ import annotations

import json
from typing import Any

# lm-format-enforcer's default cap on the length of arrays without maxItems.
DEFAULT_MAX_ARRAY_ITEMS = 20


class UnboundedSchemaError(ValueError):
    """The schema admits answers of unbounded length (free strings, numbers, open objects)."""


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def max_compact_chars(schema: dict[str, Any]) -> int:
    """Length in characters of the longest compact JSON text valid under ``schema``."""
    if "enum" in schema:
        return max(len(_dump(v)) for v in schema["enum"])
    if "const" in schema:
        return len(_dump(schema["const"]))
    if "anyOf" in schema or "oneOf" in schema:
        return max(max_compact_chars(s) for s in schema.get("anyOf", schema.get("oneOf", [])))
    kind = schema.get("type")
    if isinstance(kind, list):
        return max(max_compact_chars({**schema, "type": k}) for k in kind)
    if kind == "null":
        return 4
    if kind == "boolean":
        return 5
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        if schema.get("additionalProperties", True) is not False:
            raise UnboundedSchemaError("an object without additionalProperties: false is unbounded")
        parts = [len(_dump(k)) + 1 + max_compact_chars(v) for k, v in props.items()]
        return 2 + sum(parts) + max(0, len(parts) - 1)
    if kind == "array":
        n = max_array_items(schema)
        if n == 0:
            return 2
        # uniqueItems is not enforced during decoding, so repeats of the longest item are possible.
        return 2 + n * max_compact_chars(schema.get("items", {})) + n - 1
    if kind == "string" and "maxLength" in schema:
        return 2 + 6 * int(schema["maxLength"])  # worst case: every character \\u-escaped
    raise UnboundedSchemaError(f"cannot bound the length of a {kind or 'untyped'} value")


def max_array_items(schema: dict[str, Any]) -> int:
    """Item cap of an array: ``maxItems``, else the enum size of a unique-enum array, else 20."""
    if schema.get("maxItems") is not None:
        return int(schema["maxItems"])
    items = schema.get("items", {})
    if schema.get("uniqueItems") and "enum" in items:
        return len(items["enum"])
    return DEFAULT_MAX_ARRAY_ITEMS


def max_new_tokens_for_schema(schema: dict[str, Any]) -> int:
    """A token budget no schema-valid answer of the constrained engine can exceed."""
    return 2 * max_compact_chars(schema) + 2
