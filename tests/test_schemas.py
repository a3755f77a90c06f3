"""Schema files, validation errors, JSON Schema export and site-declared schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors.schemas import LabelValidationError, SchemaError, get_schema, load_schema_file
from extractors.schemas.registry import available_schemas
from extractors.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
CHEXPERT = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
]  # fmt: skip


def test_builtins_are_versioned_and_resolvable() -> None:
    ids = set(available_schemas())
    assert {"cxr@1", "mammo@1", "ccta@1"} <= ids
    assert get_schema("cxr").id == "cxr@1"
    assert get_schema("ccta@1").name == "ccta"


def test_cxr_has_the_14_chexpert_findings_in_order() -> None:
    cxr = get_schema("cxr")
    assert cxr.field_names == CHEXPERT
    assert set(cxr.empty_labels().values()) == {"not_mentioned"}


def test_ccta_and_mammo_shapes() -> None:
    ccta = get_schema("ccta")
    assert ccta.keys_for(ccta.field("stenosis"))[:4] == ["LM", "LAD", "LCx", "RCA"]
    assert ccta.allowed_values(ccta.field("cad_rads")) == ["0", "1", "2", "3", "4A", "4B", "5", "N"]
    mammo = get_schema("mammo")
    assert mammo.empty_labels()["birads"] == {"left": None, "right": None}
    assert "4C" in mammo.allowed_values(mammo.field("exam_birads"))


def test_validation_reports_every_problem_precisely() -> None:
    cxr = get_schema("cxr")
    labels = cxr.empty_labels()
    labels["Edema"] = "maybe"
    labels["Bogus"] = "positive"
    del labels["Fracture"]
    with pytest.raises(LabelValidationError) as info:
        cxr.validate_labels(labels)
    text = str(info.value)
    assert "cxr@1" in text and "Edema" in text and "Bogus" in text and "Fracture" in text
    assert len(info.value.errors) == 3


def test_per_key_fields_reject_unknown_keys() -> None:
    ccta = get_schema("ccta")
    labels = ccta.empty_labels()
    labels["stenosis"]["XYZ"] = "0"
    with pytest.raises(LabelValidationError, match="XYZ"):
        ccta.validate_labels(labels)


def test_canonical_json_has_fixed_key_order_and_sorted_modifiers() -> None:
    ccta = get_schema("ccta")
    labels = ccta.empty_labels()
    labels["modifiers"] = ["S", "HRP", "S"]
    shuffled = dict(reversed(list(labels.items())))
    out = json.loads(ccta.canonical_json(shuffled))
    assert list(out) == ccta.field_names
    assert out["modifiers"] == ["HRP", "S"]
    assert ccta.canonical_json(labels) == ccta.canonical_json(shuffled)


@pytest.mark.parametrize("ref", ["cxr", "mammo", "ccta"])
def test_json_schema_is_self_contained_and_strict(ref: str) -> None:
    spec = get_schema(ref)
    schema = spec.json_schema()
    assert "$ref" not in json.dumps(schema)
    assert schema["required"] == spec.field_names
    assert schema["additionalProperties"] is False


def test_json_schema_agrees_with_validation_on_enums() -> None:
    mammo = get_schema("mammo")
    prop = mammo.json_schema()["properties"]["birads"]["properties"]["left"]
    allowed = prop["anyOf"][0]["enum"]
    for value in allowed:
        labels = mammo.empty_labels()
        labels["birads"]["left"] = value
        mammo.validate_labels(labels)


def test_example_site_schema_loads_without_code() -> None:
    spec = get_schema(str(REPO / "examples" / "schemas" / "chestxray14.yaml"))
    assert spec.id == "chestxray14@1"
    assert len(spec.field_names) == 14


def test_site_schema_dir_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "knee.yaml").write_text(
        "name: knee_mri\nversion: 2\ntitle: Knee MRI\n"
        "fields:\n  - {name: ACL tear, values: ['yes', 'no', partial], nullable: true}\n"
    )
    monkeypatch.setenv("RRIEF_SCHEMA_PATH", str(tmp_path))
    spec = get_schema("knee_mri", get_settings().schema_dirs())
    assert spec.id == "knee_mri@2"
    assert spec.validate_labels({"ACL tear": "partial"}) == {"ACL tear": "partial"}
    with pytest.raises(SchemaError, match="unknown schema 'knee_mri'"):
        get_schema("knee_mri")  # only the directories passed in are searched


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: Bad Name\nversion: 1\ntitle: t\nfields: [{name: a, values: [x]}]\n", "schema name"),
        ("name: ok\nversion: 1\ntitle: t\nfields: [{name: a, enum: nope}]\n", "unknown enum"),
        (
            "name: ok\nversion: 1\ntitle: t\nfields: [{name: a, values: [x], per: side}]\n",
            "key set",
        ),
        ("name: ok\nversion: 1\ntitle: t\nfields: [{name: a}]\n", "needs `values`"),
        (
            "name: ok\nversion: 1\ntitle: t\nfields: [{name: a, values: [x], default: y}]\n",
            "default",
        ),
        ("- just a list\n", "mapping"),
        ("name: ok\nversion: 1\ntitle: t\nfields: [{name: a, values: [yes, no]}]\n", "quote YAML"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_schema_files_give_clear_errors(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    with pytest.raises(SchemaError, match=message) as info:
        load_schema_file(path)
    assert str(path) in str(info.value)


def test_unknown_schema_lists_known_ones() -> None:
    with pytest.raises(SchemaError, match="cxr@1"):
        get_schema("spine")
