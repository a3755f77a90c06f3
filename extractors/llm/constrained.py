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
fields are forced into the schema's ``required`` order, and whitespace is allowed only inside
strings (``_CompactJsonParser``). Hence every answer fits in
:func:`extractors.llm.json_bounds.max_new_tokens_for_schema` tokens and is never truncated.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
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


class _CompactJsonParser(CharacterLevelParser):
    """Wraps a JSON parser and forbids whitespace outside strings (compact output only)."""

    def __init__(self, inner: CharacterLevelParser, in_string: bool = False, escaped: bool = False):
        self.inner = inner
        self.in_string = in_string
        self.escaped = escaped

    @property
    def config(self) -> CharacterLevelParserConfig:
        return self.inner.config

    @config.setter
    def config(self, new_config: CharacterLevelParserConfig) -> None:
        self.inner.config = new_config

    def add_character(self, new_character: str) -> CharacterLevelParser:
        in_string, escaped = self.in_string, False
        if in_string:
            if self.escaped:
                escaped = False
            elif new_character == "\\":
                escaped = True
            elif new_character == '"':
                in_string = False
        elif new_character == '"':
            in_string = True
        return _CompactJsonParser(self.inner.add_character(new_character), in_string, escaped)

    def get_allowed_characters(self) -> str:
        allowed = self.inner.get_allowed_characters()
        if self.in_string:
            return allowed
        return "".join(c for c in allowed if c not in WHITESPACE_CHARACTERS)

    def can_end(self) -> bool:
        return self.inner.can_end()

    def shortcut_key(self) -> Hashable | None:
        return self.inner.shortcut_key() if self.in_string else None


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
    """A token enforcer for ``json_schema``: compact JSON, fields in ``required`` order."""
    parser = _CompactJsonParser(JsonSchemaParser(_with_item_caps(json_schema)))
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
