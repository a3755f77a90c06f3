"""Per-class, micro, macro, weighted and CheXbert-style F1 on small hand-computed cases."""

from __future__ import annotations

import math

import pytest

from extractors.evaluate.metrics import INVALID, Scorer, evaluate_tasks, make_task

POS, NEG = "positive", "not_positive"
BIN = (POS, NEG)
P, N = POS, NEG


def _binary(name: str, gold: list[str], pred: list[str]):
    return make_task(name, BIN, gold, pred, (POS,), (), "f1:positive")


@pytest.fixture
def three_findings():
    # 6 reports.
    # A: gold P P P N N N / pred P P N P N <invalid>
    #    tp = 2 (r1, r2), fp = 1 (r4), fn = 1 (r3); r6 is invalid with gold N: no tp/fp/fn
    #    P = 2/3, R = 2/3, F1 = 2*2 / (2*2 + 1 + 1) = 4/6; support 3; accuracy = 3/6 (r1, r2, r5)
    # B: gold P N N N N N / pred N P P N N N -> tp 0, fp 2, fn 1: P = 0, R = 0, F1 = 0; support 1
    #    accuracy = 3/6 (r4, r5, r6)
    # C: gold all N / pred all N -> tp = fp = fn = 0: P, R, F1 undefined; support 0; accuracy 1
    a = _binary("A", [P, P, P, N, N, N], [P, P, N, P, N, INVALID])
    b = _binary("B", [P, N, N, N, N, N], [N, P, P, N, N, N])
    c = _binary("C", [N] * 6, [N] * 6)
    return [a, b, c]


def test_per_class_precision_recall_f1(three_findings) -> None:
    v = evaluate_tasks(three_findings, resamples=0).values
    assert v[("class", "A", POS, "precision")].value == pytest.approx(2 / 3)
    assert v[("class", "A", POS, "recall")].value == pytest.approx(2 / 3)
    assert v[("class", "A", POS, "f1")].value == pytest.approx(4 / 6)
    assert v[("class", "A", POS, "support")].value == 3
    assert v[("class", "B", POS, "f1")].value == 0.0
    assert v[("class", "B", POS, "precision")].value == 0.0
    for metric in ("precision", "recall", "f1"):
        assert math.isnan(v[("class", "C", POS, metric)].value)
    assert v[("class", "C", POS, "support")].value == 0
    assert v[("task", "A", "accuracy")].value == pytest.approx(0.5)
    assert v[("task", "B", "accuracy")].value == pytest.approx(0.5)
    assert v[("task", "C", "accuracy")].value == 1.0


def test_micro_macro_weighted(three_findings) -> None:
    v = evaluate_tasks(three_findings, resamples=0).values
    # micro: tp = 2+0+0 = 2, fp = 1+2+0 = 3, fn = 1+1+0 = 2
    #   P = 2/5, R = 2/4, F1 = 2*2 / (4 + 3 + 2) = 4/9
    assert v[("agg", POS, "micro", "precision")].value == pytest.approx(0.4)
    assert v[("agg", POS, "micro", "recall")].value == pytest.approx(0.5)
    assert v[("agg", POS, "micro", "f1")].value == pytest.approx(4 / 9)
    # macro over findings with support > 0 (A, B; C has none): F1 (2/3 + 0)/2 = 1/3
    assert v[("agg", POS, "macro", "f1")].value == pytest.approx(1 / 3)
    assert v[("agg", POS, "macro", "precision")].value == pytest.approx(1 / 3)
    assert v[("agg", POS, "macro", "recall")].value == pytest.approx(1 / 3)
    # weighted by support (3, 1, 0): F1 (3 * 2/3 + 1 * 0 + 0) / 4 = 0.5
    assert v[("agg", POS, "weighted", "f1")].value == pytest.approx(0.5)
    assert v[("agg", POS, "weighted", "recall")].value == pytest.approx(0.5)
    # exact match: only r5 is right on A, B and C (r6 is invalid on A) -> 1/6
    assert v[("overall", "exact_match")].value == pytest.approx(1 / 6)


def test_macro_counts_an_undefined_precision_as_zero() -> None:
    # A: gold P N / pred P N -> P = R = F1 = 1.  B: gold P N / pred N N -> precision 0/0 undefined,
    # recall 0, F1 0.  macro P = (1 + 0)/2 = 0.5 (undefined counted as 0, scikit-learn style);
    # macro R = (1 + 0)/2 = 0.5; weighted P = (1*1 + 1*0)/2 = 0.5
    a = _binary("A", [P, N], [P, N])
    b = _binary("B", [P, N], [N, N])
    v = evaluate_tasks([a, b], resamples=0).values
    assert math.isnan(v[("class", "B", POS, "precision")].value)
    assert v[("agg", POS, "macro", "precision")].value == pytest.approx(0.5)
    assert v[("agg", POS, "macro", "recall")].value == pytest.approx(0.5)
    assert v[("agg", POS, "weighted", "precision")].value == pytest.approx(0.5)
    # micro: tp 1, fp 0, fn 1 -> P 1, R 1/2, F1 2/3
    assert v[("agg", POS, "micro", "precision")].value == 1.0
    assert v[("agg", POS, "micro", "f1")].value == pytest.approx(2 / 3)


def test_invalid_prediction_is_a_miss_not_a_false_positive() -> None:
    # gold P P / pred P <invalid>: tp 1, fn 1, fp 0 -> P = 1, R = 1/2
    t = _binary("X", [P, P], [P, INVALID])
    v = evaluate_tasks([t], resamples=0).values
    assert v[("class", "X", POS, "precision")].value == 1.0
    assert v[("class", "X", POS, "recall")].value == 0.5
    assert v[("task", "X", "accuracy")].value == 0.5


def test_chexbert_weighted_f1_four_states() -> None:
    s = ("positive", "negative", "uncertain", "not_mentioned")
    gold = ["positive", "positive", "negative", "uncertain", "not_mentioned", "not_mentioned"]
    pred = ["positive", "negative", "negative", "positive", "not_mentioned", "uncertain"]
    # positive:  tp 1 (r1), fp 1 (r4), fn 1 (r2) -> F1 = 2/(2+1+1) = 1/2, support 2
    # negative:  tp 1 (r3), fp 1 (r2), fn 0      -> F1 = 2/(2+1)   = 2/3, support 1
    # uncertain: tp 0, fp 1 (r6), fn 1 (r4)      -> F1 = 0,             support 1
    # not_mentioned: tp 1 (r5), fn 1 (r6)        -> F1 = 2/3 (blank: not in the weighted F1)
    # weighted F1 = (2 * 1/2 + 1 * 2/3 + 1 * 0) / (2 + 1 + 1) = (5/3) / 4 = 5/12
    t = make_task("Edema", s, gold, pred, s, s[:3], "weighted_f1")
    v = evaluate_tasks([t], resamples=0).values
    assert v[("class", "Edema", "positive", "f1")].value == pytest.approx(0.5)
    assert v[("class", "Edema", "negative", "f1")].value == pytest.approx(2 / 3)
    assert v[("class", "Edema", "uncertain", "f1")].value == 0.0
    assert v[("class", "Edema", "not_mentioned", "f1")].value == pytest.approx(2 / 3)
    assert v[("task", "Edema", "weighted_f1")].value == pytest.approx(5 / 12)
    assert v[("overall", "chexbert_weighted_f1")].value == pytest.approx(5 / 12)
    assert v[("task", "Edema", "accuracy")].value == pytest.approx(3 / 6)


def test_unscored_reports_are_left_out() -> None:
    # density labelled on 3 of 4 reports: gold a, None, c, c / pred a, b, c, d -> 2 of 3 correct
    t = make_task("density", ("a", "b", "c", "d"), ["a", None, "c", "c"], ["a", "b", "c", "d"])
    v = evaluate_tasks([t], resamples=0).values
    assert v[("task", "density", "scored")].value == 3
    assert v[("task", "density", "accuracy")].value == pytest.approx(2 / 3)
    # the unscored report's prediction "b" is no false positive of class b
    assert math.isnan(v[("class", "density", "b", "precision")].value)


def test_make_task_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="not among its classes"):
        make_task("x", BIN, ["maybe"], [P])
    with pytest.raises(ValueError, match="gold values but"):
        make_task("x", BIN, [P, N], [P])
    with pytest.raises(ValueError, match="same reports"):
        Scorer([_binary("a", [P], [P]), _binary("b", [P, N], [P, N])])


def test_confidence_interval_contains_point() -> None:
    gold = [P] * 30 + [N] * 70
    pred = [P] * 25 + [N] * 5 + [P] * 10 + [N] * 60
    v = evaluate_tasks([_binary("X", gold, pred)], resamples=500, seed=0).values
    f1 = v[("class", "X", POS, "f1")]
    # tp 25, fn 5, fp 10: F1 = 50 / (50 + 10 + 5) = 50/65
    assert f1.value == pytest.approx(50 / 65)
    assert 0 < f1.low < f1.value < f1.high <= 1
