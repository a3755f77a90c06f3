"""The limits ``rrief serve`` puts in front of the engine, so one client cannot stall it.

* :class:`BodyLimit` refuses a body over ``max_body_bytes`` with a 413 *before reading it*
  (from ``Content-Length``; a chunked body is counted as it arrives and cut off at the limit;
  the middleware is :mod:`extractors.http_limits`, shared with the annotation workbench).
  A 20 MB request used to take 55 s and 4.5 GB to refuse, blocking every other client.
* :class:`BearerKey` requires ``Authorization: Bearer <key>`` on ``/v1`` when a key is set
  (``RRIEF_LLM_API_KEY``, the same bearer key vLLM's ``--api-key`` takes); ``/health`` stays
  open, as in vLLM.
* :func:`max_prompt_chars` bounds a prompt in characters, checked before tokenizing: no token
  of the vocabulary spells more characters than the longest one, so a longer prompt cannot fit
  the context however it tokenizes.
* :func:`check_json_schema` refuses a ``response_format`` schema the constraint cannot follow
  faithfully (a ``$ref`` that does not resolve, a keyword of the wrong type) with a 400 instead
  of a 200 whose content was cut short.

Every refusal uses OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from extractors import http_limits

_JSON: http_limits.Headers = [(b"content-type", b"application/json")]
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # far above any prompt a model context holds
MAX_SCHEMA_DEPTH = 64
JSON_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


class SchemaProblem(ValueError):
    """The JSON Schema cannot be used to constrain decoding (the message says where and why)."""


def error_body(status: int, message: str, kind: str, param: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": param, "code": status}}
    ).encode()


class BodyLimit(http_limits.BodyLimit):
    """:class:`extractors.http_limits.BodyLimit`, answering in OpenAI's error shape."""

    def response(self, declared: str | None) -> tuple[bytes, http_limits.Headers]:
        size = f"{declared} bytes" if declared is not None else f"more than {self.max_bytes} bytes"
        message = (
            f"the request body has {size}; this server accepts at most {self.max_bytes} "
            "(rrief serve --max-body-bytes)"
        )
        return error_body(413, message, "RequestEntityTooLargeError"), _JSON


class BearerKey:
    """ASGI middleware: ``/v1`` requests need ``Authorization: Bearer <key>`` (401 otherwise)."""

    def __init__(self, app: http_limits.ASGIApp, key: str) -> None:
        self.app, self._key = app, f"Bearer {key}".encode()

    async def __call__(
        self, scope: http_limits.Scope, receive: http_limits.Receive, send: http_limits.Send
    ) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1"):
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._key):
                body = error_body(
                    401,
                    "missing or wrong API key (Authorization: Bearer ...)",
                    "AuthenticationError",
                )
                headers = [*_JSON, (b"www-authenticate", b"Bearer")]
                await http_limits.send_response(send, 401, body, headers)
                return
        await self.app(scope, receive, send)


def install_guards(app: Any, *, api_key: str | None, max_body_bytes: int) -> None:
    """Put the body limit and (with ``api_key``) the bearer key in front of the FastAPI ``app``."""
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if api_key:
        app.add_middleware(BearerKey, key=api_key)  # outermost: checked before anything else


def max_prompt_chars(tokenizer: Any, max_context: int | None) -> int | None:
    """The longest prompt (in characters) that could fit ``max_context`` tokens, or None.

    Each token spells at most as many characters as the longest vocabulary entry (byte-level
    and byte-fallback entries spell fewer than they are long), so the product is an upper
    bound that needs no tokenizing.
    """
    if max_context is None:
        return None
    vocab = tokenizer.get_vocab()
    longest = max((len(token) for token in vocab), default=1)
    return max_context * max(longest, 1)


def check_json_schema(schema: Any) -> None:
    """Raise :class:`SchemaProblem` for a schema that is not a usable JSON Schema.

    Checks what the constraint relies on: subschemas are objects (or booleans), ``type`` names
    JSON types, ``properties``/``$defs`` map to subschemas, ``required``/``enum`` are lists, and
    every ``$ref`` is a local JSON pointer (``#/...``) that resolves inside the schema.
    """
    if not isinstance(schema, dict):
        raise SchemaProblem("the schema must be a JSON object")
    todo: list[tuple[Any, str, int]] = [(schema, "#", 0)]
    while todo:
        node, where, depth = todo.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            raise SchemaProblem(f"{where} must be a schema object")
        if depth > MAX_SCHEMA_DEPTH:
            raise SchemaProblem(f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        _check_keywords(node, where)
        if "$ref" in node:
            _resolve(schema, node["$ref"], where)
        for key in ("properties", "$defs", "definitions", "patternProperties"):
            for name, sub in (node.get(key) or {}).items():
                todo.append((sub, f"{where}/{key}/{name}", depth + 1))
        for key in ("items", "additionalProperties", "not", "contains", "propertyNames"):
            if key in node and not isinstance(node[key], bool):
                todo.append((node[key], f"{where}/{key}", depth + 1))
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for i, sub in enumerate(node.get(key) or []):
                todo.append((sub, f"{where}/{key}/{i}", depth + 1))


def _check_keywords(node: dict[str, Any], where: str) -> None:
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if any(not isinstance(k, str) or k not in JSON_TYPES for k in kinds):
        raise SchemaProblem(f"{where}/type must name JSON types ({', '.join(sorted(JSON_TYPES))})")
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        if key in node and not isinstance(node[key], dict):
            raise SchemaProblem(f"{where}/{key} must be an object of schemas")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems", "enum", "required"):
        if key in node and not isinstance(node[key], list):
            raise SchemaProblem(f"{where}/{key} must be an array")
    if any(not isinstance(name, str) for name in node.get("required") or []):
        raise SchemaProblem(f"{where}/required must list property names")
    for key in ("anyOf", "oneOf", "allOf", "enum") & node.keys():
        if not node[key]:
            raise SchemaProblem(f"{where}/{key} must not be empty")


def _resolve(root: dict[str, Any], ref: Any, where: str) -> None:
    shown = json.dumps(ref)[:80]
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SchemaProblem(f"{where}/$ref {shown} is not a local reference (#/...)")
    node: Any = root
    for raw in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaProblem(f"{where}/$ref {shown} does not resolve inside the schema")
    if not isinstance(node, dict | bool):
        raise SchemaProblem(f"{where}/$ref {shown} does not point to a schema")
