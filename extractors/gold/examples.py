"""Training examples (report text + full labels) from every gold format ``rrief train`` reads.

``jsonl`` carries full labels. The public golds are partial: Open-i's MeSH terms say only what is
present; CDD-CESM gives one breast's BI-RADS and main findings (its density label has no sentence
in the text). Their examples hold what the gold says and the schema default (``not_mentioned`` /
null) everywhere else, so an adapter trained on them learns to affirm findings but never to deny
one: :func:`load_examples` returns a warning saying so. Annotated JSONL is the right input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractors.gold.base import GoldError
from extractors.gold.cddcesm import gold_findings, load_cddcesm
from extractors.gold.jsonl import iter_gold_jsonl, validated_labels
from extractors.gold.openi import load_openi_mesh, openi_reports
from extractors.schemas import LabelValidationError, SchemaSpec

TRAIN_GOLD_FORMATS = ("jsonl", "openi-mesh", "cddcesm")
_NEEDS_SCHEMA = {"openi-mesh": "cxr", "cddcesm": "mammo"}
PARTIAL_GOLD_WARNING = (
    "{fmt} gold is partial ({what}): every label it does not state is trained as the schema "
    "default, so the adapter learns to affirm findings but not to deny them. Use annotated "
    "JSONL with full labels for a production adapter."
)


class GoldExample(BaseModel):
    """One solved report: its text and its labels, valid under the schema."""

    report_id: str
    text: str
    labels: dict[str, Any]


def load_examples(
    path: str | Path, schema: SchemaSpec, fmt: str = "jsonl"
) -> tuple[list[GoldExample], str | None]:
    """Examples from ``path`` in gold format ``fmt`` and, for partial golds, a warning.

    Any record that cannot be used is a :class:`GoldError` naming it.
    """
    if fmt not in TRAIN_GOLD_FORMATS:
        raise GoldError(f"unknown gold format {fmt!r}; choose {', '.join(TRAIN_GOLD_FORMATS)}")
    path = Path(path)
    if fmt == "jsonl":
        return load_jsonl_examples(path, schema), None
    if schema.name != _NEEDS_SCHEMA[fmt]:
        raise GoldError(f"{fmt} gold trains schema {_NEEDS_SCHEMA[fmt]}, not {schema.id}")
    try:
        examples = _openi(path, schema) if fmt == "openi-mesh" else _cddcesm(path, schema)
    except (GoldError, KeyError, LabelValidationError) as exc:
        raise GoldError(f"cannot read {path} as {fmt} gold: {exc}") from None
    if not examples:
        raise GoldError(f"{path} holds no usable {fmt} examples")
    what = (
        "MeSH terms name present findings only"
        if fmt == "openi-mesh"
        else "one breast's BI-RADS and main findings"
    )
    return examples, PARTIAL_GOLD_WARNING.format(fmt=fmt, what=what)


def load_jsonl_examples(path: str | Path, schema: SchemaSpec) -> list[GoldExample]:
    """Gold JSONL (``report_id``, ``text``, ``labels``) as examples; any bad line names itself."""
    examples: list[GoldExample] = []
    for rid, where, record in iter_gold_jsonl(path):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise GoldError(f"{where} (report {rid!r}): 'text' must be a non-empty string")
        labels = validated_labels(record, where, rid, schema)
        examples.append(GoldExample(report_id=rid, text=text, labels=labels))
    if not examples:
        raise GoldError(f"gold file {path} holds no examples")
    return examples


def _openi(path: Path, schema: SchemaSpec) -> list[GoldExample]:
    """Reports with human MeSH labels and some text; findings the terms name are positive."""
    gold = load_openi_mesh(path).labels
    examples = []
    for report in openi_reports(path):
        present = gold.get(report["report_id"])
        if present is None or not report["text"].strip():
            continue  # "No Indexing" rows carry no labels; empty reports nothing to learn from
        labels = schema.empty_labels()
        for finding, is_present in present.items():
            if is_present:
                labels[finding] = "positive"
        examples.append(_example(report["report_id"], report["text"], labels, schema))
    return examples


def _cddcesm(path: Path, schema: SchemaSpec) -> list[GoldExample]:
    """One example per breast row: its side's BI-RADS and the labelled findings."""
    examples = []
    for row in load_cddcesm(path):
        gold, side = row["gold"], row["gold"]["side"]
        labels = schema.empty_labels()
        labels["exam_birads"] = gold["birads"]
        labels["birads"][side] = gold["birads"]
        # density stays null: this copy's text lost the density sentence, and a target the
        # text does not support would teach the adapter to invent it
        for field, value in gold_findings(gold["findings"], gold["tags"]).items():
            if value is not None:
                labels[field][side] = value
        examples.append(_example(row["report_id"], row["text"], labels, schema))
    return examples


def _example(report_id: str, text: str, labels: dict, schema: SchemaSpec) -> GoldExample:
    return GoldExample(report_id=report_id, text=text, labels=schema.validate_labels(labels))
