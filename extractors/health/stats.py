"""Small, dependency-free statistics for drift checks: two-proportion tests and FDR control.

Why our own: the project does not depend on scipy, and the three pieces needed here (a pooled
two-proportion z-test, Fisher's exact test for small counts, Benjamini-Hochberg q-values) are
short and easy to verify against textbook values (see ``tests/test_health_drift.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

# Cochran's rule: the normal approximation is trusted when every expected cell count >= 5.
MIN_EXPECTED_CELL = 5.0

Method = Literal["z", "fisher", "none"]


class ProportionTest(BaseModel):
    """Result of comparing x1/n1 (today) with x0/n0 (the baseline)."""

    model_config = ConfigDict(frozen=True)

    method: Method
    statistic: float | None
    p_value: float


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal, P(Z > z)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


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
    return ProportionTest(method="z", statistic=z, p_value=min(1.0, 2.0 * normal_sf(abs(z))))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(x1: int, n1: int, x0: int, n0: int) -> ProportionTest:
    """Two-sided Fisher exact test of the 2x2 table [[x1, n1-x1], [x0, n0-x0]].

    Conditional on the margins, x1 is hypergeometric; the p-value sums the probabilities of all
    tables no more likely than the observed one (the usual "minimum likelihood" two-sided rule,
    with a relative tolerance for floating-point ties).
    """
    _check_counts(x1, n1, x0, n0)
    if n1 == 0 or n0 == 0:
        return ProportionTest(method="none", statistic=None, p_value=1.0)
    n, k = n1 + n0, x1 + x0
    lo, hi = max(0, n1 - (n - k)), min(k, n1)
    log_total = _log_choose(n, n1)

    def log_pmf(i: int) -> float:
        return _log_choose(k, i) + _log_choose(n - k, n1 - i) - log_total

    observed = log_pmf(x1)
    cutoff = observed + math.log1p(1e-7)
    p = sum(math.exp(lp) for i in range(lo, hi + 1) if (lp := log_pmf(i)) <= cutoff)
    return ProportionTest(method="fisher", statistic=None, p_value=min(1.0, p))


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
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    Flagging ``q <= alpha`` controls the false discovery rate at ``alpha`` over the family.
    """
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, running)
    return q
