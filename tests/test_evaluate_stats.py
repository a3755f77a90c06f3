"""Bootstrap, paired P-values, McNemar and Holm against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from extractors.evaluate.metrics import evaluate_tasks, make_task, paired_deltas
from extractors.evaluate.stats import (
    holm,
    mcnemar,
    mcnemar_from_correct,
    paired_bootstrap_pvalue,
    percentile_interval,
    resample_weights,
)

STATES = ("positive", "negative", "uncertain", "not_mentioned")


def _random_tasks(n_reports: int, n_tasks: int, seed: int, accuracy: float = 0.8) -> list:
    rng = np.random.default_rng(seed)
    tasks = []
    for k in range(n_tasks):
        gold = list(rng.choice(STATES, n_reports))
        pred = [g if rng.random() < accuracy else str(rng.choice(STATES)) for g in gold]
        tasks.append(make_task(f"f{k}", STATES, gold, pred, STATES, STATES[:3], "weighted_f1"))
    return tasks


# --- McNemar ------------------------------------------------------------------------------------
def test_mcnemar_exact_branch_hand_computed() -> None:
    # b=3, c=10, n=13 < 25: p = 2 * P(X <= 3), X ~ Bin(13, 1/2)
    # = 2 * (C(13,0)+C(13,1)+C(13,2)+C(13,3)) / 2^13 = 2 * (1+13+78+286) / 8192 = 756/8192
    res = mcnemar(3, 10)
    assert res.method == "exact"
    assert res.p_value == pytest.approx(756 / 8192)
    # b=0, c=5: p = 2 * (1/32) = 0.0625
    assert mcnemar(0, 5).p_value == pytest.approx(0.0625)
    # symmetric and capped at 1: b=c=12 (n=24) -> 2 * P(X <= 12) > 1 -> 1
    assert mcnemar(12, 12).p_value == 1.0
    assert mcnemar(12, 12).method == "exact"


def test_mcnemar_chi_square_branch_hand_computed() -> None:
    # b=10, c=25, n=35 >= 25: x = (|10-25| - 1)^2 / 35 = 196/35 = 5.6; chi2(1) sf(5.6) = 0.017960
    res = mcnemar(10, 25)
    assert res.method == "chi2-cc"
    assert res.statistic == pytest.approx(5.6)
    assert res.p_value == pytest.approx(0.017960, abs=2e-6)
    # the boundary: 25 discordant pairs switches to chi-square; x = (25-1)^2/25 = 23.04
    edge = mcnemar(0, 25)
    assert edge.method == "chi2-cc" and edge.statistic == pytest.approx(23.04)
    assert edge.p_value == pytest.approx(math.erfc(math.sqrt(23.04 / 2)))
    assert mcnemar(0, 24).method == "exact"


def test_mcnemar_no_discordance_and_from_vectors() -> None:
    assert mcnemar(0, 0).p_value == 1.0
    a = np.array([1, 1, 0, 0, 1, 1], dtype=bool)
    b = np.array([1, 0, 1, 0, 0, 0], dtype=bool)
    res = mcnemar_from_correct(a, b)  # only A right: reports 2, 5, 6 -> b=3; only B right: 3 -> c=1
    assert (res.b, res.c) == (3, 1)
    assert res.p_value == pytest.approx(2 * (1 + 4) / 16)  # 2 * P(X<=1), X ~ Bin(4, 1/2)
    with pytest.raises(ValueError):
        mcnemar(-1, 2)


# --- Holm ---------------------------------------------------------------------------------------
def test_holm_known_example() -> None:
    # sorted: 0.005*4 = 0.02; 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, NaN kept and not counted in the family (m = 2 here)
    adjusted = holm([0.6, float("nan"), 0.7])
    assert adjusted[0] == pytest.approx(1.0) and adjusted[2] == pytest.approx(1.0)
    assert math.isnan(adjusted[1])
    assert holm([0.01, float("nan"), 0.02]) == pytest.approx(
        [0.02, float("nan"), 0.02], nan_ok=True
    )


# --- bootstrap ----------------------------------------------------------------------------------
def test_resample_weights_are_reproducible_multiplicities() -> None:
    a = np.concatenate(list(resample_weights(50, 300, seed=7)))
    b = np.concatenate(list(resample_weights(50, 300, seed=7)))
    c = np.concatenate(list(resample_weights(50, 300, seed=8)))
    assert a.shape == (300, 50)
    assert (a.sum(axis=1) == 50).all()  # each resample draws n reports
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_percentile_interval_and_paired_pvalue_by_hand() -> None:
    iv = percentile_interval(0.5, np.array([np.nan, *np.linspace(0.0, 1.0, 101)]))
    assert iv.low == pytest.approx(0.025) and iv.high == pytest.approx(0.975)
    # observed 0.1; |d* - 0.1| = [0, 0.2, 0.2, 0.05] -> 2 at least as extreme -> (1 + 2) / (1 + 4)
    assert paired_bootstrap_pvalue(0.1, np.array([0.1, 0.3, -0.1, 0.15])) == pytest.approx(0.6)
    assert paired_bootstrap_pvalue(0.0, np.array([0.1, -0.1])) == 1.0


def test_confidence_intervals_reproducible_with_seed_and_differ_with_another() -> None:
    tasks = _random_tasks(200, 3, seed=1)
    first = evaluate_tasks(tasks, resamples=200, seed=0).values
    again = evaluate_tasks(tasks, resamples=200, seed=0).values
    other = evaluate_tasks(tasks, resamples=200, seed=1).values
    assert {k: iv.as_dict() for k, iv in first.items()} == {
        k: iv.as_dict() for k, iv in again.items()
    }
    key = ("agg", "positive", "micro", "f1")
    assert first[key].value == other[key].value  # the point estimate does not depend on the seed
    assert (first[key].low, first[key].high) != (other[key].low, other[key].high)
    assert first[key].low < first[key].value < first[key].high


def test_paired_bootstrap_detects_a_better_system_and_not_a_copy() -> None:
    good = _random_tasks(300, 4, seed=5, accuracy=0.95)
    # the same gold, a noisier system B
    rng = np.random.default_rng(9)
    bad = []
    for t in good:
        gold = [t.classes[g] for g in t.gold]
        pred = [g if rng.random() < 0.6 else str(rng.choice(STATES)) for g in gold]
        bad.append(make_task(t.name, STATES, gold, pred, STATES, STATES[:3], "weighted_f1"))
    key = ("overall", "chexbert_weighted_f1")
    diff = paired_deltas(good, bad, [key], resamples=300, seed=0)[key]
    assert diff.a > diff.b and diff.p_value < 0.01 and diff.delta.low > 0
    same = paired_deltas(good, good, [key], resamples=300, seed=0)[key]
    assert same.delta.value == 0.0 and same.p_value == 1.0
