"""Inter-annotator agreement: Cohen's kappa per label path and pooled over all of them, and the
tasks where the two annotators disagree (what the adjudication page lists).

Each double task contributes one pair: the first two annotators who submitted it. Kappa is
``(p_o - p_e) / (1 - p_e)`` with ``p_e`` from each annotator's own value frequencies; it is
undefined (``None``) when both used one and the same value throughout (``p_e = 1``). The
overall figure is the pooled kappa of De Vries et al. (2008): mean ``p_o`` and mean ``p_e``
over the labels, then the same formula, so rare labels do not vanish into an average.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

from pydantic import BaseModel

from extractors.annotate.forms import label_paths
from extractors.gold.annotations import Bind, TaskAnswers, task_answers
from extractors.schemas import SchemaSpec


def _chance(a: Sequence[Hashable], b: Sequence[Hashable]) -> tuple[float, float]:
    """Observed agreement and agreement expected by chance."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[v] * cb[v] for v in ca.keys() | cb.keys()) / (n * n)
    return observed, expected


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' values on the same items; ``None`` when undefined."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    if not a:
        return None
    observed, expected = _chance(a, b)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def pooled_kappa(pairs: Sequence[tuple[Sequence[Hashable], Sequence[Hashable]]]) -> float | None:
    """Pooled kappa over several labels, each a pair of value sequences (De Vries et al. 2008)."""
    stats = [_chance(a, b) for a, b in pairs if a]
    if not stats:
        return None
    observed = sum(s[0] for s in stats) / len(stats)
    expected = sum(s[1] for s in stats) / len(stats)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def value_at(labels: dict[str, Any], path: str) -> Hashable:
    """The value at a label path (``field`` or ``field.key``; field names have no dots) as a
    comparable category: lists as sorted tuples."""
    name, _, key = path.partition(".")
    value = labels.get(name)
    if key:
        value = (value or {}).get(key)
    if isinstance(value, list):
        return tuple(sorted(str(v) for v in value))
    return value


class LabelAgreement(BaseModel):
    path: str
    n: int
    agreement: float | None
    kappa: float | None


class Disagreement(BaseModel):
    task_id: int
    report_key: str
    annotators: tuple[str, str]
    fields: dict[str, tuple[Any, Any]]
    adjudicated: bool


class AgreementReport(BaseModel):
    schema_id: str
    n_pairs: int
    labels: list[LabelAgreement]
    overall_kappa: float | None
    overall_agreement: float | None
    disagreements: list[Disagreement]


def pair_of(answers: TaskAnswers) -> tuple[tuple[str, dict], tuple[str, dict]] | None:
    """The first two submitted answers of a task, if it has two."""
    subs = list(answers.submitted.items())[:2]
    if len(subs) < 2:
        return None
    (a, ra), (b, rb) = subs
    assert ra.labels is not None and rb.labels is not None
    return (a, ra.labels), (b, rb.labels)


def compute_agreement(schema: SchemaSpec, answers: Sequence[TaskAnswers]) -> AgreementReport:
    """Agreement over every task in ``answers`` that two annotators submitted."""
    paths = label_paths(schema)
    columns: dict[str, tuple[list[Hashable], list[Hashable]]] = {p: ([], []) for p in paths}
    disagreements: list[Disagreement] = []
    n_pairs = 0
    for ans in answers:
        pair = pair_of(ans)
        if pair is None:
            continue
        n_pairs += 1
        (name_a, la), (name_b, lb) = pair
        differing: dict[str, tuple[Any, Any]] = {}
        for p in paths:
            va, vb = value_at(la, p), value_at(lb, p)
            columns[p][0].append(va)
            columns[p][1].append(vb)
            if va != vb:
                differing[p] = (va, vb)
        if differing:
            disagreements.append(
                Disagreement(
                    task_id=ans.task.task_id,
                    report_key=ans.task.report_key,
                    annotators=(name_a, name_b),
                    fields=differing,
                    adjudicated=ans.adjudicated is not None,
                )
            )
    per_label = []
    for p in paths:
        a, b = columns[p]
        agreement = _chance(a, b)[0] if a else None
        per_label.append(LabelAgreement(path=p, n=len(a), agreement=agreement, kappa=cohen_kappa(a, b)))  # fmt: skip
    pairs = [columns[p] for p in paths]
    observed = [_chance(a, b)[0] for a, b in pairs if a]
    return AgreementReport(
        schema_id=schema.id,
        n_pairs=n_pairs,
        labels=per_label,
        overall_kappa=pooled_kappa(pairs),
        overall_agreement=sum(observed) / len(observed) if observed else None,
        disagreements=disagreements,
    )


def agreement_report(bind: Bind, schema: SchemaSpec) -> AgreementReport:
    """:func:`compute_agreement` over the store's answers for ``schema``."""
    return compute_agreement(schema, task_answers(bind, schema))
