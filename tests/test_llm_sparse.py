"""Sparse answers (prompt template 2): defaults filled, schema order, no repeats, bad values refused,
and the constrained decoder keeping to all of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors.llm.json_bounds import max_new_tokens_for_schema
from extractors.llm.sparse import (
    fill_defaults,
    parse_sparse,
    sparse_json,
    sparse_json_schema,
    sparse_labels,
)
from extractors.schemas import LabelValidationError, get_schema

CXR = get_schema("cxr")
MAMMO = get_schema("mammo")


def test_sparse_keeps_only_non_default_values_in_schema_order() -> None:
    labels = CXR.empty_labels() | {"Pleural Effusion": "negative", "Cardiomegaly": "positive"}
    assert sparse_json(CXR, labels) == '{"Cardiomegaly":"positive","Pleural Effusion":"negative"}'
    assert sparse_json(CXR, CXR.empty_labels()) == "{}"


def test_per_key_fields_keep_only_the_keys_that_differ() -> None:
    labels = MAMMO.empty_labels()
    labels["birads"]["left"] = "4"
    labels["mass"]["left"] = "present"
    sparse = sparse_labels(MAMMO, labels)
    assert sparse["birads"] == {"left": "4"} and sparse["mass"] == {"left": "present"}
    assert "density" not in sparse  # null default
    assert parse_sparse(MAMMO, json.dumps(sparse)) == MAMMO.validate_labels(labels)


def test_defaults_are_filled_and_the_round_trip_is_exact() -> None:
    labels = CXR.empty_labels() | {"Edema": "uncertain"}
    assert fill_defaults(CXR, {"Edema": "uncertain"}) == labels
    assert parse_sparse(CXR, sparse_json(CXR, labels)) == labels
    assert parse_sparse(CXR, "{}") == CXR.empty_labels()


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"Edema":"positive","Edema":"negative"}', "'Edema' appears twice"),
        ('{"Edema":"yes"}', "Edema"),
        ('{"Heart Attack":"positive"}', "Extra inputs are not permitted"),
        ('["Edema"]', "must be an object"),
    ],
)
def test_invalid_sparse_answers_are_refused(text: str, message: str) -> None:
    with pytest.raises(LabelValidationError, match=message):
        parse_sparse(CXR, text)


def test_sparse_json_schema_requires_nothing_and_forbids_extras() -> None:
    schema = sparse_json_schema(MAMMO)
    assert "required" not in schema and schema["additionalProperties"] is False
    assert "required" not in schema["properties"]["birads"]
    assert list(schema["properties"]) == MAMMO.field_names
    assert max_new_tokens_for_schema(schema) == max_new_tokens_for_schema(MAMMO.json_schema())


def test_constrained_decoding_keeps_order_and_never_repeats(tiny_base_model: Path) -> None:
    """Whatever a random model prefers, the constrained answer parses, in schema order."""
    from extractors.llm.engine import HFEngine
    from extractors.llm.prompts import build_messages

    engine = HFEngine(tiny_base_model, device="cpu")
    schema_js = sparse_json_schema(CXR)
    prompts = [engine.render_chat(build_messages(CXR, t)) for t in ("FINDINGS: a.", "b", "c c")]
    gens = engine.generate(prompts, json_schema=schema_js, max_new_tokens=400)
    for gen in gens:
        assert gen.finish_reason == "stop", gen.text
        keys = list(json.loads(gen.text, object_pairs_hook=lambda p: dict(p)).keys())
        pairs = json.loads(gen.text, object_pairs_hook=list)
        assert len(pairs) == len({k for k, _ in pairs})  # no repeats
        assert keys == [f for f in CXR.field_names if f in keys]  # schema order
        parse_sparse(CXR, gen.text)
