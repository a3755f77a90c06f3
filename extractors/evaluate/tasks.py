"""Join gold and predictions into scored tasks, grouped in sections (one table family each).

Reports are the gold's, in the gold's order. A gold report whose prediction is an error line,
failed validation or is missing altogether is kept and scores as a miss (``INVALID``); prediction
lines with no gold are counted and left unscored. How each gold kind is scored:

- ``positive_only`` (Open-i MeSH, ChestX-ray14): one binary task per covered finding, classes
  ``positive`` / ``not_positive``; only the positive class is reported. Predicted ``uncertain``
  is counted as positive (U-ones) in one section and as negative (U-zeros) in another
  (``--uncertain-policy both``, the default), so the policy is always stated.
- ``labels`` (full labels): one task per enum field, or per ``field.key`` of per-key fields;
  every class is reported, ``null`` is a class of nullable fields, ``not_mentioned``/``null``
  are the blank classes left out of the support-weighted (CheXbert-style) F1. ``enum_list``
  fields become one present/absent task per value (``modifiers[HRP]``); string/integer fields
  are scored by exact match only.
- ``cddcesm``: ``birads`` = exact match of ``birads[side]``, ``birads_category`` = the same with
  4A/4B/4C read as 4, ``density`` = the exam density against the breast's label where labelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from extractors.evaluate.metrics import INVALID, Task, make_task
from extractors.evaluate.predictions import PredictionSet
from extractors.gold import FOUR_STATES, GoldError, GoldSet
from extractors.gold.normalize import birads_category
from extractors.rules.mammo import BIRADS_ORDER
from extractors.schemas import SchemaSpec

UncertainPolicy = Literal["both", "positive", "negative"]
BLANK_CLASSES = ("not_mentioned", "null")
Layout = Literal["by_class", "by_task"]


@dataclass
class Coverage:
    """Which gold reports had a usable prediction; the rest count as errors, never dropped."""

    n_gold: int
    skipped_gold: dict[str, str] = field(default_factory=dict)
    error_ids: dict[str, str] = field(default_factory=dict)
    missing_ids: list[str] = field(default_factory=list)
    extra_ids: list[str] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)

    @property
    def n_invalid(self) -> int:
        return len(self.error_ids) + len(self.missing_ids)

    @property
    def invalid_rate(self) -> float:
        return self.n_invalid / self.n_gold if self.n_gold else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "gold_reports": self.n_gold,
            "gold_skipped": len(self.skipped_gold),
            "error_or_invalid_predictions": len(self.error_ids),
            "missing_predictions": len(self.missing_ids),
            "invalid_rate": self.invalid_rate,
            "predictions_without_gold": len(self.extra_ids),
            "unreadable_prediction_lines": len(self.unattributed),
        }


@dataclass
class Section:
    """A family of tasks rendered together (e.g. the positive class under one uncertain policy)."""

    name: str
    title: str
    note: str
    tasks: list[Task]
    layout: Layout


def align(
    gold: GoldSet, preds: PredictionSet
) -> tuple[list[str], list[dict[str, Any] | None], Coverage]:
    """Gold report ids (gold order), their predicted labels (``None`` = invalid) and coverage."""
    ids = list(gold.labels)
    cov = Coverage(n_gold=len(ids), skipped_gold=dict(gold.skipped))
    labels: list[dict[str, Any] | None] = []
    for rid in ids:
        if rid in preds.labels:
            labels.append(preds.labels[rid])
            continue
        labels.append(None)
        if rid in preds.errors:
            cov.error_ids[rid] = preds.errors[rid]
        else:
            cov.missing_ids.append(rid)
    gold_ids = set(ids) | set(gold.skipped)
    cov.extra_ids = sorted(preds.ids() - gold_ids)
    cov.unattributed = list(preds.unattributed)
    return ids, labels, cov


def build_sections(
    schema: SchemaSpec,
    gold: GoldSet,
    preds: PredictionSet,
    policy: UncertainPolicy = "both",
    findings: Sequence[str] | None = None,
) -> tuple[list[Section], Coverage]:
    """Sections of tasks for ``preds`` scored against ``gold``; see the module docstring."""
    ids, pred_labels, cov = align(gold, preds)
    if gold.kind == "positive_only":
        sections = _positive_only_sections(schema, gold, ids, pred_labels, policy, findings)
    elif gold.kind == "cddcesm":
        sections = _cddcesm_sections(schema, gold, ids, pred_labels, findings)
    else:
        sections = _labels_sections(schema, gold, ids, pred_labels, findings)
    return sections, cov


# ---------------------------------------------------------------------------------------------
def _select(names: list[str], findings: Sequence[str] | None, what: str) -> list[str]:
    """Keep task names chosen by ``--findings`` (a field name selects all its keys)."""
    if not findings:
        return names
    chosen: list[str] = []
    unknown = []
    for wanted in findings:
        hits = [
            n
            for n in names
            if n == wanted or n.split(".", 1)[0] == wanted or n.split("[", 1)[0] == wanted
        ]
        if not hits:
            unknown.append(wanted)
        chosen.extend(h for h in hits if h not in chosen)
    if unknown:
        raise GoldError(
            f"--findings {', '.join(map(repr, unknown))} not scored by {what}; choose from: "
            + ", ".join(names)
        )
    return [n for n in names if n in chosen]


def _positive_only_sections(
    schema: SchemaSpec,
    gold: GoldSet,
    ids: list[str],
    pred_labels: list[dict[str, Any] | None],
    policy: UncertainPolicy,
    findings: Sequence[str] | None,
) -> list[Section]:
    lacking = [f for f in gold.findings if f not in schema.field_names]
    if lacking:
        raise GoldError(
            f"the gold ({gold.source}) covers chest X-ray findings that schema {schema.id} lacks: "
            f"{', '.join(lacking)}; use --schema cxr"
        )
    names = _select(list(gold.findings), findings, "this positive-only gold")
    policies: list[Literal["positive", "negative"]] = (
        ["positive", "negative"] if policy == "both" else [policy]
    )
    sections = []
    for pol in policies:
        tasks = []
        for name in names:
            g = ["positive" if gold.labels[rid][name] else "not_positive" for rid in ids]
            p = [_binary_pred(lab, name, pol) for lab in pred_labels]
            tasks.append(
                make_task(
                    name, ("positive", "not_positive"), g, p, ("positive",), (), "f1:positive"
                )
            )
        word = "positive (U-ones)" if pol == "positive" else "negative (U-zeros)"
        sections.append(
            Section(
                name=f"positive_uncertain_as_{pol}",
                title=f"Positive class — predicted uncertain counted as {word}",
                note=gold.note,
                tasks=tasks,
                layout="by_class",
            )
        )
    return sections


def _binary_pred(labels: dict[str, Any] | None, name: str, policy: str) -> str:
    if labels is None:
        return INVALID
    value = labels.get(name)
    if value == "positive" or (value == "uncertain" and policy == "positive"):
        return "positive"
    return "not_positive"


def _cddcesm_sections(
    schema: SchemaSpec,
    gold: GoldSet,
    ids: list[str],
    pred_labels: list[dict[str, Any] | None],
    findings: Sequence[str] | None,
) -> list[Section]:
    if "birads" not in schema.field_names or "density" not in schema.field_names:
        raise GoldError(
            f"CDD-CESM gold needs a mammography schema (birads, density); got {schema.id}"
        )
    birads_values = schema.allowed_values(schema.field("birads")) or list(BIRADS_ORDER)
    density_values = schema.allowed_values(schema.field("density")) or ["a", "b", "c", "d"]

    def pred_birads(lab: dict[str, Any] | None, side: str) -> str | None:
        if lab is None:
            return INVALID
        return lab["birads"][side]

    golds = [gold.labels[rid] for rid in ids]
    g_b = [g["birads"] for g in golds]
    p_b = [pred_birads(lab, g["side"]) for lab, g in zip(pred_labels, golds, strict=True)]
    categories = [c for c in birads_values if birads_category(c) == c]
    all_tasks = {
        "birads": make_task("birads", birads_values, g_b, p_b),
        "birads_category": make_task(
            "birads_category",
            categories,
            [birads_category(v) for v in g_b],
            [birads_category(v) if v != INVALID else INVALID for v in p_b],
        ),
        "density": make_task(
            "density",
            density_values,
            [g["density"] for g in golds],
            [INVALID if lab is None else lab["density"] for lab in pred_labels],
        ),
    }
    names = _select(list(all_tasks), findings, "the CDD-CESM gold")
    return [
        Section(
            name="mammography",
            title="Mammography — BI-RADS per breast and ACR density",
            note=gold.note,
            tasks=[all_tasks[n] for n in names],
            layout="by_task",
        )
    ]


def _labels_sections(
    schema: SchemaSpec,
    gold: GoldSet,
    ids: list[str],
    pred_labels: list[dict[str, Any] | None],
    findings: Sequence[str] | None,
) -> list[Section]:
    golds = [gold.labels[rid] for rid in ids]
    tasks: list[Task] = []
    for f in schema.fields:
        keys = schema.keys_for(f)
        for key in keys or [None]:
            name = f.name if key is None else f"{f.name}.{key}"

            def get(lab: dict[str, Any] | None, _f: str = f.name, _k: str | None = key) -> Any:
                if lab is None:
                    return INVALID
                value = lab[_f]
                return value[_k] if _k is not None else value

            g = [get(lab) for lab in golds]
            p = [get(lab) for lab in pred_labels]
            tasks.extend(_field_tasks(schema, f.name, name, g, p))
    names = _select([t.name for t in tasks], findings, f"schema {schema.id}")
    tasks = [t for t in tasks if t.name in names]
    groups: dict[tuple[str, ...], list[Task]] = {}
    for t in tasks:
        groups.setdefault(t.classes, []).append(t)
    sections = []
    for classes, group in groups.items():
        title = _group_title(classes, group)
        sections.append(
            Section(
                name=_group_name(classes, group),
                title=title,
                note=gold.note,
                tasks=group,
                layout="by_class" if len(group) >= len(group[0].reported) else "by_task",
            )
        )
    return sections


def _field_tasks(
    schema: SchemaSpec, field_name: str, name: str, gold: list[Any], pred: list[Any]
) -> list[Task]:
    f = schema.field(field_name)
    allowed = schema.allowed_values(f)
    if f.kind == "enum":
        classes = [*(allowed or []), *(["null"] if f.nullable else [])]
        g = [_as_class(v) for v in gold]
        p = [_as_class(v) for v in pred]
        weighted = [c for c in classes if c not in BLANK_CLASSES]
        primary = "weighted_f1" if tuple(allowed or ()) == FOUR_STATES else "accuracy"
        return [make_task(name, classes, g, p, classes, weighted, primary)]
    if f.kind == "enum_list":
        out = []
        for value in allowed or []:
            g = [None if v is None else ("present" if value in v else "absent") for v in gold]
            p = [
                INVALID if v == INVALID or v is None else ("present" if value in v else "absent")
                for v in pred
            ]
            out.append(
                make_task(
                    f"{name}[{value}]", ("present", "absent"), g, p, ("present",), (), "f1:present"
                )
            )
        return out
    if f.kind == "boolean":
        classes = ["true", "false", *(["null"] if f.nullable else [])]
        g = [_as_class(v) for v in gold]
        p = [_as_class(v) for v in pred]
        return [make_task(name, classes, g, p, classes)]
    # string / integer: exact match only, over the values the gold uses
    g = [_as_class(v) for v in gold]
    p = [_as_class(v) for v in pred]
    classes = sorted({v for v in g if v is not None})
    return [make_task(name, classes, g, p, ())] if classes else []


def _as_class(value: Any) -> str:
    if value == INVALID:
        return INVALID
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _group_name(classes: tuple[str, ...], group: list[Task]) -> str:
    if classes == FOUR_STATES:
        return "four_state"
    if classes == ("present", "absent") and all("[" in t.name for t in group):
        return "list_values"
    return "fields_" + "_".join(
        dict.fromkeys(t.name.split(".", 1)[0].split("[", 1)[0].replace(" ", "_") for t in group)
    )


def _group_title(classes: tuple[str, ...], group: list[Task]) -> str:
    if classes == FOUR_STATES:
        return "Four-state labels (positive / negative / uncertain / not_mentioned)"
    if classes == ("present", "absent") and all("[" in t.name for t in group):
        return "List fields — presence of each value"
    names = sorted({t.name.split(".", 1)[0].split("[", 1)[0] for t in group})
    return f"{', '.join(names)} — classes {' / '.join(classes)}"
