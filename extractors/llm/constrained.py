"""JSON-Schema-constrained decoding for transformers ``generate`` via lm-format-enforcer.

Why lm-format-enforcer (``lm-format-enforcer==0.11.3``, already pinned in the project): it is
maintained, pure Python (no compiled wheels or triton, so it installs wherever torch does and
runs on CPU), supports the JSON Schema subset our schemas use (enum, anyOf with null, nested
objects with required keys and ``additionalProperties: false``, unique enum arrays), and works
with any tokenizer through a character-level parser walked along the tokenizer's prefix tree.
Its bundled ``integrations.transformers`` module does not import under transformers 5 (it imports
``transformers.tokenization_utils``, which 5.x removed), so this module uses the library's
core (``TokenEnforcer``, ``JsonSchemaParser``) with our own small logits processor; the core
has no transformers dependency. (xgrammar 0.2.8 would pull triton and apache-tvm-ffi into a CPU
install; outlines brings a much larger dependency tree.)

Two settings make the output the same compact, fixed-order JSON the adapters are trained on:
object keys only in schema order (required ones forced, optional ones of sparse answers allowed
only after the last key written; none twice), and whitespace only inside strings
(``_CompactJsonParser``). Hence every answer fits in
:func:`extractors.llm.json_bounds.max_new_tokens_for_schema` tokens and is never truncated.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from lmformatenforcer import CharacterLevelParser, JsonSchemaParser, TokenEnforcer
from lmformatenforcer.characterlevelparser import CharacterLevelParserConfig
from lmformatenforcer.consts import WHITESPACE_CHARACTERS
from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData
from transformers import LogitsProcessor

from extractors.llm.json_bounds import max_array_items

# Forget cached prefix states of a schema's enforcer after this many (bounds memory on servers).
_MAX_PREFIX_STATES = 200_000


@dataclass(frozen=True)
class _Frame:
    """One open object or array: its JSON Schema node and, for objects, the keys in order."""

    kind: str  # "{" or "["
    node: dict[str, Any] | None
    last: int = -1  # index in ``keys`` of the last key written
    expect_key: bool = True
    key: str | None = None  # the last key written (its value is being parsed)
    after_comma: bool = False  # a "," was written and the next key has not started

    @property
    def keys(self) -> list[str]:
        return list((self.node or {}).get("properties", {})) if self.kind == "{" else []

    @property
    def later_keys(self) -> list[str]:
        return self.keys[self.last + 1 :]


def _child(node: dict[str, Any] | None, frame: _Frame | None, kind: str) -> dict[str, Any] | None:
    """Schema node of the object/array value opened with ``kind`` inside ``frame``."""
    if frame is None:
        found = node
    elif frame.kind == "{":
        found = (frame.node or {}).get("properties", {}).get(frame.key or "")
    else:
        found = (frame.node or {}).get("items")
    if found and "anyOf" in found:  # nullable objects/arrays: the option of this kind
        want = "object" if kind == "{" else "array"
        found = next((o for o in found["anyOf"] if o.get("type") == want), None)
    return found


class _CompactJsonParser(CharacterLevelParser):
    """Wraps a JSON parser: no whitespace outside strings, object keys in schema order.

    lm-format-enforcer forces the order of *required* keys only; for optional keys (sparse
    answers) it allows any unused key. This wrapper follows the JSON structure and lets an
    object key start only with a property that comes after the last one written, so sparse
    answers keep the schema order the adapters were trained on. Immutable, like every parser.
    """

    def __init__(
        self,
        inner: CharacterLevelParser,
        root: dict[str, Any] | None = None,
        stack: tuple[_Frame, ...] = (),
        in_string: bool = False,
        escaped: bool = False,
        key_buf: str | None = None,
    ):
        self.inner = inner
        self.root = root
        self.stack = stack
        self.in_string = in_string
        self.escaped = escaped
        self.key_buf = key_buf  # the key typed so far, while inside an object key

    @property
    def config(self) -> CharacterLevelParserConfig:
        return self.inner.config

    @config.setter
    def config(self, new_config: CharacterLevelParserConfig) -> None:
        self.inner.config = new_config

    def _top(self) -> _Frame | None:
        return self.stack[-1] if self.stack else None

    def add_character(self, new_character: str) -> CharacterLevelParser:
        c = new_character
        inner = self.inner.add_character(c)
        stack, in_string, escaped, key_buf = self.stack, self.in_string, False, self.key_buf
        top = self._top()
        if in_string:
            if self.escaped:
                escaped = False
                key_buf = None if key_buf is None else key_buf + c
            elif c == "\\":
                escaped = True
                key_buf = None if key_buf is None else key_buf + c
            elif c == '"':
                in_string = False
                if key_buf is not None and top is not None:
                    keys = top.keys
                    last = keys.index(key_buf) if key_buf in keys else top.last
                    stack = (*stack[:-1], replace(top, last=last, key=key_buf, expect_key=False))
                key_buf = None
            elif key_buf is not None:
                key_buf += c
        elif c == '"':
            in_string = True
            if top is not None and top.kind == "{" and top.expect_key:
                key_buf = ""
                stack = (*stack[:-1], replace(top, after_comma=False))
        elif c in "{[":
            stack = (*stack, _Frame(kind=c, node=_child(self.root, top, c)))
        elif c in "}]":
            stack = stack[:-1]
        elif c == "," and top is not None and top.kind == "{":
            stack = (*stack[:-1], replace(top, expect_key=True, after_comma=True))
        return _CompactJsonParser(inner, self.root, stack, in_string, escaped, key_buf)

    def get_allowed_characters(self) -> str:
        allowed = self.inner.get_allowed_characters()
        top = self._top()
        if self.in_string:
            if self.key_buf is None or top is None or not top.keys:
                return allowed
            later = top.later_keys
            buf = self.key_buf
            return "".join(
                c
                for c in allowed
                if (c == '"' and buf in later) or any(k.startswith(buf + c) for k in later)
            )
        allowed = "".join(c for c in allowed if c not in WHITESPACE_CHARACTERS)
        if top is not None and top.kind == "{" and top.after_comma:
            # lm-format-enforcer lets an object end right after a comma when no key is
            # required (sparse answers): {"a":"b",} is no JSON, so a key must follow
            allowed = allowed.replace("}", "")
        if top is not None and top.kind == "{" and top.keys and not top.later_keys:
            # every later key is used up: no further key may start
            allowed = allowed.replace('"' if top.expect_key else ",", "")
        return allowed

    def can_end(self) -> bool:
        return self.inner.can_end()

    def shortcut_key(self) -> Hashable | None:
        return self.inner.shortcut_key() if self.in_string and self.key_buf is None else None


def build_tokenizer_data(
    tokenizer: Any, eos_token_ids: Sequence[int], vocab_size: int
) -> TokenEnforcerTokenizerData:
    """The per-tokenizer tables lm-format-enforcer needs (built once per engine).

    Same method as the library's transformers integration: decode each token after a "0" token
    to see whether it starts a new word (a leading space is part of the token's text).
    """
    token_0 = tokenizer.encode("0", add_special_tokens=False)[-1]
    special = set(tokenizer.all_special_ids)
    regular: list[tuple[int, str, bool]] = []
    for idx in range(min(len(tokenizer), vocab_size)):
        if idx in special:
            continue
        after_0 = tokenizer.decode([token_0, idx])[1:]
        alone = tokenizer.decode([idx])
        regular.append((idx, after_0, len(after_0) > len(alone)))

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular, decode, list(eos_token_ids), False, vocab_size)


def _with_item_caps(schema: Any) -> Any:
    """Copy of ``schema`` where unique enum arrays get ``maxItems`` = enum size.

    lm-format-enforcer does not enforce ``uniqueItems``; the cap keeps the answer length within
    :func:`extractors.llm.json_bounds.max_new_tokens_for_schema` (repeats are then removed by
    the schema's validation, which canonicalises enum lists).
    """
    if isinstance(schema, list):
        return [_with_item_caps(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _with_item_caps(v) for k, v in schema.items()}
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = max_array_items(out)
    return out


def make_enforcer(
    tokenizer_data: TokenEnforcerTokenizerData, json_schema: dict[str, Any]
) -> TokenEnforcer:
    """A token enforcer for ``json_schema``: compact JSON, fields in schema order, none twice."""
    capped = _with_item_caps(json_schema)
    parser = _CompactJsonParser(JsonSchemaParser(capped), root=capped)
    enforcer = TokenEnforcer(tokenizer_data, parser)
    # TokenEnforcer resets the parser config (alphabet only); set ours after it.
    parser.config = CharacterLevelParserConfig(
        alphabet=tokenizer_data.tokenizer_alphabet,
        max_consecutive_whitespaces=1,  # a single space, e.g. inside the key "No Finding"
        force_json_field_order=True,
    )
    return enforcer


def schema_key(json_schema: dict[str, Any]) -> str:
    return json.dumps(json_schema, sort_keys=True)


def trim_enforcer(enforcer: TokenEnforcer) -> None:
    if len(enforcer.prefix_states) > _MAX_PREFIX_STATES:
        enforcer.prefix_states.clear()


class JsonConstraintProcessor(LogitsProcessor):
    """Masks every token the enforcer disallows, row by row, for the generated part only.

    Rows that have already produced an end-of-sequence token are left alone (generate pads
    them). The enforcer is keyed by the generated token sequence, so rows with identical
    prefixes share the work.
    """

    def __init__(self, enforcer: TokenEnforcer, prompt_length: int, eos_token_ids: Sequence[int]):
        self.enforcer = enforcer
        self.prompt_length = prompt_length
        self.eos = set(eos_token_ids)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.ones_like(scores, dtype=torch.bool)
        for row, sequence in enumerate(input_ids[:, self.prompt_length :].tolist()):
            if self.eos.intersection(sequence):
                mask[row] = False
                continue
            allowed = self.enforcer.get_allowed_tokens(sequence).allowed_tokens
            mask[row, torch.tensor(allowed, dtype=torch.long, device=scores.device)] = False
        return scores.masked_fill(mask, float("-inf"))
