"""Statistics for drift checks: two-proportion tests and FDR control.

Fisher's exact test and Benjamini-Hochberg come from ``scipy.stats`` (installed with Great
Expectations); the pooled two-proportion z-test is ours because it takes a dispersion factor
(quasi-binomial variance for overdispersed daily counts), which no scipy test does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats

# Cochran's rule: the normal approximation is trusted when every expected cell count >= 5.
MIN_EXPECTED_CELL = 5.0

Method = Literal["z", "fisher", "none"]


class ProportionTest(BaseModel):
    """Result of comparing x1/n1 (today) with x0/n0 (the baseline)."""

    model_config = ConfigDict(frozen=True)

    method: Method
    statistic: float | None
    p_value: float


def _check_counts(x1: int, n1: int, x0: int, n0: int) -> None:
    for name, x, n in (("today", x1, n1), ("baseline", x0, n0)):
        if n < 0 or x < 0 or x > n:
            raise ValueError(f"bad {name} count {x}/{n}: need 0 <= x <= n")


def two_proportion_z(x1: int, n1: int, x0: int, n0: int, dispersion: float = 1.0) -> ProportionTest:
    """Pooled two-sided two-proportion z-test; ``dispersion`` (>= 1) inflates the variance for
    overdispersed daily counts (quasi-binomial). No variance (both 0% or both 100%): p = 1."""
    _check_counts(x1, n1, x0, n0)
    if n1 == 0 or n0 == 0:
        return ProportionTest(method="none", statistic=None, p_value=1.0)
    pooled = (x1 + x0) / (n1 + n0)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0) * max(1.0, dispersion)
    if var <= 0.0:
        return ProportionTest(method="z", statistic=0.0, p_value=1.0)
    z = (x1 / n1 - x0 / n0) / math.sqrt(var)
    return ProportionTest(
        method="z", statistic=z, p_value=min(1.0, 2.0 * float(stats.norm.sf(abs(z))))
    )


def fisher_exact(x1: int, n1: int, x0: int, n0: int) -> ProportionTest:
    """Two-sided Fisher exact test of the 2x2 table [[x1, n1-x1], [x0, n0-x0]]
    (``scipy.stats.fisher_exact``: the sum of the tables no more likely than the observed one)."""
    _check_counts(x1, n1, x0, n0)
    if n1 == 0 or n0 == 0:
        return ProportionTest(method="none", statistic=None, p_value=1.0)
    result = stats.fisher_exact([[x1, n1 - x1], [x0, n0 - x0]], alternative="two-sided")
    return ProportionTest(method="fisher", statistic=None, p_value=min(1.0, float(result.pvalue)))


def compare_proportions(
    x1: int, n1: int, x0: int, n0: int, dispersion: float = 1.0
) -> ProportionTest:
    """The z-test when every expected cell count is >= 5, else Fisher's exact test."""
    _check_counts(x1, n1, x0, n0)
    if n1 == 0 or n0 == 0:
        return ProportionTest(method="none", statistic=None, p_value=1.0)
    n, k = n1 + n0, x1 + x0
    expected = (n1 * k / n, n1 * (n - k) / n, n0 * k / n, n0 * (n - k) / n)
    if min(expected) >= MIN_EXPECTED_CELL:
        return two_proportion_z(x1, n1, x0, n0, dispersion)
    return fisher_exact(x1, n1, x0, n0)


def dispersion_factor(counts: Sequence[tuple[int, int]]) -> float:
    """Pearson overdispersion of daily counts ``(x_i, n_i)`` around their pooled proportion:
    chi2 / (days - 1), floored at 1 (binomial). Day-to-day case-mix swings beyond sampling noise
    widen the z-test instead of raising alerts."""
    days = [(x, n) for x, n in counts if n > 0]
    if len(days) < 2:
        return 1.0
    total_x = sum(x for x, _ in days)
    total_n = sum(n for _, n in days)
    p = total_x / total_n
    if p <= 0.0 or p >= 1.0:
        return 1.0
    chi2 = sum((x - n * p) ** 2 / (n * p * (1.0 - p)) for x, n in days)
    return max(1.0, chi2 / (len(days) - 1))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order
    (``scipy.stats.false_discovery_control``).

    Flagging ``q <= alpha`` controls the false discovery rate at ``alpha`` over the family.
    """
    if len(p_values) == 0:
        return []
    q = stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")
    return [min(1.0, float(v)) for v in q]
