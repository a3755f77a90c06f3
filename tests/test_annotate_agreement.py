"""Agreement arithmetic on hand-computed cases: Cohen's kappa, the pooled kappa over labels,
and which tasks count as disagreements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from extractors.annotate.agreement import cohen_kappa, compute_agreement, pooled_kappa
from extractors.gold.annotations import LabelRecord, Task, TaskAnswers
from extractors.schemas import get_schema

T0 = datetime(2025, 3, 4, tzinfo=UTC)

# Two raters, 50 items: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
#   p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4
YES_NO_A = ["yes"] * 25 + ["no"] * 25
YES_NO_B = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
# Four states, 6 items: agree on 4 (p_o = 2/3); A has p2 u1 n2 m1, B p1 u2 n1 m2:
#   p_e = (2*1 + 1*2 + 2*1 + 1*2)/36 = 8/36; kappa = (24/36 - 8/36)/(28/36) = 4/7
FOUR_A = ["positive", "positive", "uncertain", "negative", "negative", "not_mentioned"]
FOUR_B = ["positive", "uncertain", "uncertain", "negative", "not_mentioned", "not_mentioned"]


def test_cohen_kappa_on_hand_computed_cases() -> None:
    assert cohen_kappa(YES_NO_A, YES_NO_B) == pytest.approx(0.4)
    assert cohen_kappa(FOUR_A, FOUR_B) == pytest.approx(4 / 7)
    assert cohen_kappa(FOUR_A, FOUR_A) == pytest.approx(1.0)
    # systematic disagreement on a balanced binary label: p_o = 0, p_e = 0.5 -> -1
    assert cohen_kappa(["a", "b"] * 5, ["b", "a"] * 5) == pytest.approx(-1.0)
    # both raters always say the same single value: p_e = 1, kappa undefined
    assert cohen_kappa(["negative"] * 7, ["negative"] * 7) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa(["a"], ["a", "b"])


def test_pooled_kappa_averages_agreement_before_the_ratio() -> None:
    # mean p_o = (7/10 + 2/3)/2 = 41/60; mean p_e = (1/2 + 2/9)/2 = 13/36
    # pooled = (41/60 - 13/36) / (1 - 13/36) = 58/115
    pooled = pooled_kappa([(YES_NO_A, YES_NO_B), (FOUR_A, FOUR_B)])
    assert pooled == pytest.approx(58 / 115)
    assert pooled != pytest.approx((0.4 + 4 / 7) / 2)  # not the mean of the kappas
    assert pooled_kappa([(["x"] * 3, ["x"] * 3)]) is None


def _answers(task_id: int, a: dict, b: dict, n_annotators: int = 2) -> TaskAnswers:
    task = Task(
        task_id=task_id,
        report_key=f"{task_id:064x}",
        schema_name="cxr",
        schema_version=1,
        strategy="random",
        reason="random",
        batch="b",
        n_annotators=n_annotators,
        created_at=T0,
    )

    def rec(who: str, labels: dict, k: int) -> LabelRecord:
        return LabelRecord(
            label_id=task_id * 10 + k,
            task_id=task_id,
            annotator=who,
            revision=1,
            status="submitted",
            labels=labels,
            prefill_source="rules",
            prefill_version="1",
            content_sha256="0" * 64,
            started_at=T0,
            saved_at=T0 + timedelta(minutes=k),
        )

    return TaskAnswers(
        task=task, submitted={"A1": rec("A1", a, 1), "A2": rec("A2", b, 2)}, adjudicated=None,
        flagged=False,
    )  # fmt: skip


def test_compute_agreement_per_label_overall_and_disagreements() -> None:
    schema = get_schema("cxr")
    base = schema.empty_labels()
    answers = []
    for i, (va, vb) in enumerate(zip(FOUR_A, FOUR_B, strict=True)):
        answers.append(_answers(i + 1, {**base, "Edema": va}, {**base, "Edema": vb}))
    report = compute_agreement(schema, answers)
    assert report.n_pairs == 6
    by_path = {lab.path: lab for lab in report.labels}
    assert by_path["Edema"].kappa == pytest.approx(4 / 7)
    assert by_path["Edema"].agreement == pytest.approx(4 / 6)
    assert by_path["Cardiomegaly"].kappa is None and by_path["Cardiomegaly"].agreement == 1.0
    # pooled over 14 labels: 13 with p_o = p_e = 1 and Edema with 2/3 and 8/36
    p_o = (13 + 2 / 3) / 14
    p_e = (13 + 8 / 36) / 14
    assert report.overall_kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    assert report.overall_agreement == pytest.approx(p_o)
    assert [d.task_id for d in report.disagreements] == [2, 5]
    assert report.disagreements[0].fields == {"Edema": ("positive", "uncertain")}


def test_per_key_and_list_fields_are_compared_value_by_value() -> None:
    mammo, ccta = get_schema("mammo"), get_schema("ccta")
    a = mammo.empty_labels()
    b = {**a, "birads": {"left": "4A", "right": None}}
    report = compute_agreement(mammo, [_answers(1, a, b)])
    assert report.disagreements[0].fields == {"birads.left": (None, "4A")}
    c = {**ccta.empty_labels(), "modifiers": ["S", "HRP"]}
    d = {**ccta.empty_labels(), "modifiers": ["HRP", "S"]}
    assert compute_agreement(ccta, [_answers(2, c, d)]).disagreements == []  # order is no value
