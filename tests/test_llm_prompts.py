"""Prompts, answer targets and the schema-derived token budget (extractors.llm.prompts/json_bounds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extractors.llm.json_bounds import (
    UnboundedSchemaError,
    max_compact_chars,
    max_new_tokens_for_schema,
)
from extractors.llm.prompts import (
    BASE_MODEL_FORMAT,
    adapter_format,
    build_messages,
    render_prompt,
    target_text,
)
from extractors.schemas import SchemaSpec, get_schema

SCHEMAS = ["cxr", "mammo", "ccta"]


def _tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def _longest_labels(schema: SchemaSpec) -> dict[str, Any]:
    """Labels that pick the longest allowed value of every field (the longest valid answer)."""
    labels: dict[str, Any] = {}
    for f in schema.fields:
        values = schema.allowed_values(f) or []
        value: Any = list(values) if f.kind == "enum_list" else max(values, key=len)
        keys = schema.keys_for(f)
        labels[f.name] = {k: value for k in keys} if keys else value
    return schema.validate_labels(labels)


@pytest.mark.parametrize("name", SCHEMAS)
def test_instruction_is_fixed_and_report_is_the_user_message(name: str) -> None:
    schema = get_schema(name)
    a = build_messages(schema, "FINDINGS: first report.")
    b = build_messages(schema, "FINDINGS: another one, longer.")
    assert [m["role"] for m in a] == ["system", "user"]
    assert a[0] == b[0]  # identical prefix for every report: prefix caching can reuse it
    assert a[1]["content"] == "FINDINGS: first report."
    full = build_messages(schema, "FINDINGS: x.", BASE_MODEL_FORMAT)
    assert schema.describe() in full[0]["content"]  # the base model is told everything
    assert "Write ONLY the fields whose value differs from its default" in full[0]["content"]
    v1 = build_messages(schema, "FINDINGS: x.", adapter_format("1"))
    assert schema.describe() in v1[0]["content"] and "every field below" in v1[0]["content"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_compact_instruction_names_the_schema_and_fields_in_order(name: str) -> None:
    schema = get_schema(name)
    text = build_messages(schema, "FINDINGS: x.")[0]["content"]
    assert text.startswith(schema.id)
    positions = [text.index(f) for f in schema.field_names]
    assert positions == sorted(positions)
    assert len(text) < len(build_messages(schema, "x", BASE_MODEL_FORMAT)[0]["content"]) / 3


def test_few_shot_examples_come_between_instruction_and_report() -> None:
    schema = get_schema("cxr")
    labels = schema.empty_labels() | {"Edema": "positive"}
    messages = build_messages(schema, "REPORT", BASE_MODEL_FORMAT, [("SHOT", labels)])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == '{"Edema":"positive"}'
    assert messages[-1]["content"] == "REPORT"
    assert target_text(schema, labels, adapter_format("1")) == schema.canonical_json(labels)


def test_render_prompt_uses_the_chat_template(tiny_base_model: Path) -> None:
    tok = _tokenizer(tiny_base_model)
    messages = build_messages(get_schema("cxr"), "FINDINGS: clear lungs.")
    text = render_prompt(tok, messages)
    assert text.startswith("<s><|system|>\n")
    assert text.endswith("FINDINGS: clear lungs.</s>\n<|assistant|>\n")


def test_render_prompt_plain_fallback(tiny_base_model_plain: Path) -> None:
    tok = _tokenizer(tiny_base_model_plain)
    messages = build_messages(get_schema("cxr"), "FINDINGS: clear lungs.")
    text = render_prompt(tok, messages)
    assert text.startswith("### Instruction\n")
    assert "### Report\nFINDINGS: clear lungs.\n" in text
    assert text.endswith("### Answer\n")


def test_encode_prompt_adds_bos_exactly_once(
    tiny_base_model: Path, tiny_base_model_plain: Path
) -> None:
    from extractors.llm.engine import encode_prompt

    for path in (tiny_base_model, tiny_base_model_plain):
        tok = _tokenizer(path)
        ids = encode_prompt(tok, render_prompt(tok, build_messages(get_schema("cxr"), "x")))
        assert ids[0] == tok.bos_token_id
        assert ids.count(tok.bos_token_id) == 1


@pytest.mark.parametrize("name", SCHEMAS)
def test_template_1_target_is_canonical_compact_json(name: str) -> None:
    schema = get_schema(name)
    labels = schema.empty_labels()
    reordered = dict(reversed(list(labels.items())))  # key order is fixed anyway
    text = target_text(schema, reordered, adapter_format("1"))
    assert text == schema.canonical_json(labels)
    assert list(json.loads(text)) == schema.field_names
    assert " " not in text.replace("No Finding", "").replace(
        "Enlarged Cardiomediastinum", ""
    ).replace("Lung Opacity", "").replace("Lung Lesion", "").replace(
        "Pleural Effusion", ""
    ).replace("Pleural Other", "").replace("Support Devices", "")


@pytest.mark.parametrize("name", SCHEMAS)
def test_token_budget_covers_the_longest_valid_answer(name: str, tiny_base_model: Path) -> None:
    schema = get_schema(name)
    longest = target_text(schema, _longest_labels(schema))
    assert max_compact_chars(schema.json_schema()) >= len(longest)
    tokens = len(_tokenizer(tiny_base_model)(longest, add_special_tokens=False)["input_ids"])
    assert max_new_tokens_for_schema(schema.json_schema()) >= tokens + 1  # + end of sequence


def test_unbounded_schema_is_refused() -> None:
    with pytest.raises(UnboundedSchemaError):
        max_compact_chars(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": False,
            }
        )
    with pytest.raises(UnboundedSchemaError):
        max_compact_chars({"type": "object", "properties": {}})
