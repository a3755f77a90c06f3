"""The label form generated from any schema, its parser, and the report view's segments."""

from __future__ import annotations

import json

import pytest
from starlette.datastructures import FormData as MultiDict

from extractors.annotate.forms import (
    build_form,
    label_paths,
    parse_evidence,
    parse_labels,
    raw_values,
)
from extractors.annotate.report_view import report_sections
from extractors.schemas import SchemaSpec, get_schema

SITE = SchemaSpec.model_validate(
    {
        "name": "site", "version": 3, "title": "A site schema",
        "enums": {"grade": ["low", "high"]}, "keysets": {"side": ["left", "right"]},
        "fields": [
            {"name": "grade", "enum": "grade", "per": "side", "nullable": True},
            {"name": "signs", "kind": "enum_list", "values": ["a", "b", "c"]},
            {"name": "size_mm", "kind": "integer", "nullable": True},
            {"name": "comment", "kind": "string"},
            {"name": "urgent", "kind": "boolean"},
        ],
    }
)  # fmt: skip


def test_controls_come_from_the_schema() -> None:
    groups = build_form(SITE, SITE.empty_labels(), SITE.empty_labels())
    assert [g.name for g in groups] == ["grade", "signs", "size_mm", "comment", "urgent"]
    grade = groups[0]
    assert [c.path for c in grade.controls] == ["grade.left", "grade.right"]
    assert [(o.value, o.label, o.key) for o in grade.options] == [
        ("low", "low", "1"), ("high", "high", "2"), ("", "not stated", "3"),
    ]  # fmt: skip
    assert groups[1].controls[0].multiple and groups[2].controls[0].options == []
    assert [o.label for o in groups[4].options] == ["yes", "no"]
    assert label_paths(SITE) == ["grade.left", "grade.right", "signs", "size_mm", "comment", "urgent"]  # fmt: skip
    # every mammography value and every CCTA vessel gets a control
    mammo, ccta = get_schema("mammo"), get_schema("ccta")
    assert (
        len([c for g in build_form(mammo, mammo.empty_labels(), {}) for c in g.controls]) == 18
    )  # 1 + 2 + 1 + 7 x 2
    assert len([c for g in build_form(ccta, ccta.empty_labels(), {}) for c in g.controls]) == 15


def test_posted_values_parse_or_fail_field_by_field() -> None:
    form = MultiDict(
        [("L:grade.left", "high"), ("L:grade.right", ""), ("L:signs", "c"), ("L:signs", "a"),
         ("L:size_mm", "12"), ("L:comment", "ok"), ("L:urgent", "false")]
    )  # fmt: skip
    labels, errors = parse_labels(SITE, raw_values(SITE, form))
    assert errors == {}
    assert labels == {
        "grade": {"left": "high", "right": None}, "signs": ["a", "c"], "size_mm": 12,
        "comment": "ok", "urgent": False,
    }  # fmt: skip
    bad = MultiDict([("L:grade.left", "huge"), ("L:signs", "z"), ("L:size_mm", "twelve"), ("L:comment", "")])  # fmt: skip
    labels, errors = parse_labels(SITE, raw_values(SITE, bad))
    assert labels is None
    assert errors == {
        "grade.left": "'huge' is not one of low, high",
        "grade.right": "no value chosen",
        "signs": "z not allowed; choose from a, b, c",
        "size_mm": "'twelve' is not a whole number",
        "urgent": "no value chosen",
    }
    # a refused form shows what was typed, with the error beside it
    groups = build_form(SITE, SITE.empty_labels(), {}, errors, raw_values(SITE, bad))
    size = groups[2].controls[0]
    assert (size.value, size.error) == ("twelve", "'twelve' is not a whole number")


def test_evidence_is_checked_against_paths_and_text() -> None:
    assert parse_evidence(SITE, json.dumps({"signs": [[3, 7], [0, 2], [3, 7]]}), 10) == {"signs": [(0, 2), (3, 7)]}  # fmt: skip
    for bad, message in (
        ('{"nope": [[0, 1]]}', "unknown field"),
        ('{"signs": [[5, 50]]}', "not inside the report"),
        ('{"signs": [[5, 2]]}', "not inside the report"),
        ("[1]", "must map"),
        ("{", "not valid JSON"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_evidence(SITE, bad, 10)


def test_report_segments_keep_exact_offsets() -> None:
    text = "INDICATION: Cough.\nFINDINGS:\nSmall left effusion. No pneumothorax.\nIMPRESSION: Effusion."
    start = text.index("Small")
    end = text.index("No pneumothorax")
    views = report_sections(text, {"Pleural Effusion": [(start, end - 1)]}, {"Pneumothorax": [(end, end + 16)]})  # fmt: skip
    assert [v.title for v in views] == ["Indication", "Findings", "Impression"]
    assert all(v.header is None for v in views)  # the title already says it
    for v in views:
        for seg in v.segments:
            assert text[seg.start : seg.end] == seg.text  # offsets index the text exactly
    findings = views[1].segments
    assert [(s.text, s.prefill_paths, s.marked_paths, s.blank) for s in findings][:4] == [
        ("\n", (), (), True),
        ("Small left effusion.", ("Pleural Effusion",), (), False),
        (" ", (), (), False),
        ("No pneumothorax.", (), ("Pneumothorax",), False),
    ]
    assert report_sections("no headers at all", {}, {})[0].title == "Report text"
