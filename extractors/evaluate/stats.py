"""Resampling statistics for evaluations: bootstrap CIs, paired bootstrap tests, McNemar, Holm.

Every statistic here resamples *reports* (the unit a labeler is applied to), never labels, so
the correlation between findings of one report is kept. The bootstrap is seeded and vectorised:
a resample is a row of multiplicities ``W[b, i]`` (how often report ``i`` was drawn), and any
count a metric needs is ``W @ indicator`` — one matrix product for all findings at once.
Only the standard library and numpy are used (the chi-square tail with one degree of freedom is
``erfc(sqrt(x / 2))``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CI_LEVEL = 0.95
_MAX_CELLS_PER_CHUNK = 4_000_000  # resamples x reports held in memory at once (~32 MB float64)


def resample_weights(
    n_reports: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> Iterator[np.ndarray]:
    """Yield chunks of bootstrap multiplicity rows, shape ``(chunk, n_reports)``, float64.

    The draws depend only on ``(n_reports, resamples, seed)``, so two prediction files scored
    against the same gold see the same resamples (that is what makes the bootstrap *paired*).
    """
    if n_reports < 1:
        raise ValueError("the bootstrap needs at least one report")
    if resamples < 1:
        raise ValueError("the bootstrap needs at least one resample")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _MAX_CELLS_PER_CHUNK // n_reports))
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        draws = rng.integers(0, n_reports, size=(size, n_reports))
        flat = draws + (np.arange(size)[:, None] * n_reports)
        counts = np.bincount(flat.ravel(), minlength=size * n_reports)
        yield counts.reshape(size, n_reports).astype(np.float64)
        done += size


def bootstrap_counts(
    indicators: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """Column sums of ``indicators`` (reports x columns) per resample: ``(resamples, columns)``."""
    parts = [w @ indicators for w in resample_weights(indicators.shape[0], resamples, seed)]
    return np.concatenate(parts, axis=0)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval (NaN where undefined)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float | None]:
        return {
            "value": _clean(self.value),
            "ci_low": _clean(self.low),
            "ci_high": _clean(self.high),
        }


def _clean(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def percentile_interval(point: float, samples: np.ndarray, level: float = CI_LEVEL) -> Interval:
    """Percentile interval of bootstrap ``samples``; resamples where the metric is undefined
    (NaN, e.g. recall of a finding that a resample happens to lack) are left out."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0 or not math.isfinite(point):
        return Interval(point, math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(float(point), float(low), float(high))


def paired_bootstrap_pvalue(observed_delta: float, delta_samples: np.ndarray) -> float:
    """Two-sided P-value of ``observed_delta`` (metric of A minus metric of B) being zero.

    The bootstrap deltas are centred on the observed one to approximate the null distribution:
    ``p = (1 + #{|d* - d| >= |d|}) / (1 + B)`` over the resamples where the metric is defined.
    """
    finite = delta_samples[np.isfinite(delta_samples)]
    if finite.size == 0 or not math.isfinite(observed_delta):
        return math.nan
    if observed_delta == 0.0:
        return 1.0
    extreme = np.count_nonzero(np.abs(finite - observed_delta) >= abs(observed_delta))
    return float((1 + extreme) / (1 + finite.size))


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on paired correctness: ``b`` = only A correct, ``c`` = only B correct."""

    b: int
    c: int
    statistic: float | None
    p_value: float
    method: str  # "exact" | "chi2-cc" | "none"


EXACT_BELOW = 25


def mcnemar(b: int, c: int) -> McNemarResult:
    """McNemar's test from the discordant counts.

    With fewer than 25 discordant pairs: exact two-sided binomial test (p = 0.5);
    otherwise chi-square with Edwards' continuity correction, ``(|b - c| - 1)^2 / (b + c)``,
    whose upper tail with one degree of freedom is ``erfc(sqrt(x / 2))``.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return McNemarResult(b, c, None, 1.0, "none")
    if n < EXACT_BELOW:
        k = min(b, c)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
        return McNemarResult(b, c, None, min(1.0, 2.0 * tail), "exact")
    stat = (abs(b - c) - 1.0) ** 2 / n
    return McNemarResult(b, c, stat, math.erfc(math.sqrt(stat / 2.0)), "chi2-cc")


def mcnemar_from_correct(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """McNemar's test from two boolean vectors of per-report correctness (same reports)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("correctness vectors must have the same shape")
    return mcnemar(int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), returned in the input order.

    NaN P-values are kept as NaN and not counted in the family size.
    """
    indexed = [(p, i) for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    out = [math.nan] * len(p_values)
    m = len(indexed)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
