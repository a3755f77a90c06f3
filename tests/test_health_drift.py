"""Drift statistics on constructed series: textbook values of the tests, a real shift is flagged,
sampling noise, trivial shifts on huge volumes, small days and ordinary day-to-day swings are
not. Also the invalid-output rate and volume rules. Pure Python, no database."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from extractors.health.drift import DayCounts, detect_drift
from extractors.health.metrics import MetricsGroup, invalid_rate_findings, volume_findings
from extractors.health.stats import (
    benjamini_hochberg,
    compare_proportions,
    dispersion_factor,
    fisher_exact,
    two_proportion_z,
)
from extractors.health.thresholds import HealthThresholds

FINDINGS = [f"finding_{i}" for i in range(14)]
VALUES = ("positive", "negative", "uncertain", "not_mentioned")


# --- the tests themselves ---------------------------------------------------------------------


def test_two_proportion_z_textbook_value() -> None:
    t = two_proportion_z(30, 100, 20, 100)
    assert t.method == "z"
    assert t.statistic == pytest.approx(1.63299, abs=1e-4)
    assert t.p_value == pytest.approx(0.10247, abs=1e-4)
    # the same data with variance inflated 4x: z halves
    assert two_proportion_z(30, 100, 20, 100, dispersion=4).statistic == pytest.approx(0.8165, 1e-3)
    assert two_proportion_z(0, 50, 0, 500).p_value == 1.0  # no variance at all


def test_fisher_exact_textbook_value_and_symmetry() -> None:
    # the classic tea-tasting-style table [[1, 9], [11, 3]]: two-sided p = 0.002759
    assert fisher_exact(1, 10, 11, 14).p_value == pytest.approx(0.0027594, rel=1e-4)
    assert fisher_exact(11, 14, 1, 10).p_value == pytest.approx(0.0027594, rel=1e-4)
    assert fisher_exact(5, 10, 5, 10).p_value == pytest.approx(1.0)


def test_z_test_matches_scipy_chi_square_and_dispersion_widens_it() -> None:
    """The pooled z-test (ours, for the dispersion factor) squared is Pearson's chi-square of
    the 2x2 table without continuity correction; dispersion d divides z by sqrt(d)."""
    from scipy import stats

    rng = np.random.default_rng(7)
    for _ in range(40):
        n1, n0 = int(rng.integers(20, 200)), int(rng.integers(100, 3000))
        x1, x0 = int(rng.integers(1, n1)), int(rng.integers(1, n0))
        table = [[x1, n1 - x1], [x0, n0 - x0]]
        chi2 = stats.chi2_contingency(table, correction=False)
        test = two_proportion_z(x1, n1, x0, n0)
        assert test.p_value == pytest.approx(chi2.pvalue, rel=1e-9, abs=1e-15)
        widened = two_proportion_z(x1, n1, x0, n0, dispersion=4.0)
        assert widened.statistic == pytest.approx(test.statistic / 2.0)
        assert widened.p_value >= test.p_value


def test_small_expected_counts_use_fisher() -> None:
    assert compare_proportions(3, 40, 10, 2000).method == "fisher"
    assert compare_proportions(30, 100, 300, 2000).method == "z"
    with pytest.raises(ValueError, match="0 <= x <= n"):
        compare_proportions(5, 4, 1, 10)


def test_benjamini_hochberg_textbook_values() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 0.5]) == pytest.approx([0.9, 0.9])


def test_dispersion_factor() -> None:
    assert dispersion_factor([(20, 100)] * 10) == 1.0  # identical days: binomial floor
    swinging = [(12, 100), (28, 100)] * 5
    # each day is 8 points off 20%: chi2 per day = 100 * 0.08^2 / (0.2 * 0.8) = 4
    assert dispersion_factor(swinging) == pytest.approx(4 * 10 / 9)


# --- constructed series -----------------------------------------------------------------------


def probabilities(shift: dict[str, float] | None = None) -> dict[str, list[float]]:
    """Value probabilities of every finding; ``shift`` moves mass from not_mentioned to
    positive for the named findings."""
    base = {f: [0.05 + 0.01 * i, 0.30, 0.03, 0.62 - 0.01 * i] for i, f in enumerate(FINDINGS)}
    for f, delta in (shift or {}).items():
        p = base[f]
        base[f] = [p[0] + delta, p[1], p[2], p[3] - delta]
    return base


def sample_day(
    rng: np.random.Generator, n: int, probs: dict[str, list[float]] | None = None
) -> DayCounts:
    probs = probs or probabilities()
    counts = {
        f: dict(zip(VALUES, (int(x) for x in rng.multinomial(n, p)), strict=True))
        for f, p in probs.items()
    }
    return DayCounts(n=n, counts=counts)


def baseline_days(rng: np.random.Generator, n: int, days: int = 28) -> list[DayCounts]:
    return [sample_day(rng, n) for _ in range(days)]


def test_a_real_shift_is_flagged_and_only_there() -> None:
    rng = np.random.default_rng(11)
    today = sample_day(rng, 300, probabilities({"finding_3": 0.15}))
    report = detect_drift({"cxr": today}, {"cxr": baseline_days(rng, 300)})
    assert report.skipped == []
    assert len(report.results) == len(FINDINGS) * len(VALUES)
    flagged = {(r.path, r.value) for r in report.flagged}
    # mass moved from not_mentioned to positive; nothing else is flagged
    assert ("finding_3", "positive") in flagged
    assert {path for path, _ in flagged} == {"finding_3"}
    top = next(r for r in report.flagged if r.value == "positive")
    assert top.change > 0.10 and top.q_value < 1e-6 and top.method == "z"


def test_noise_is_not_flagged() -> None:
    """Under no change, days with any flag stay within the FDR level (56 tests a day)."""
    noisy_days = 0
    for seed in range(60):
        rng = np.random.default_rng(1000 + seed)
        report = detect_drift({"cxr": sample_day(rng, 300)}, {"cxr": baseline_days(rng, 300)})
        noisy_days += bool(report.flagged)
    assert noisy_days <= 2, f"{noisy_days} of 60 unchanged days raised a drift flag"


def test_trivial_shift_on_huge_volume_stays_below_the_effect_floor() -> None:
    rng = np.random.default_rng(5)
    n = 50_000
    today = sample_day(rng, n, probabilities({"finding_0": 0.02}))
    report = detect_drift({"cxr": today}, {"cxr": baseline_days(rng, n)})
    moved = next(r for r in report.results if (r.path, r.value) == ("finding_0", "positive"))
    assert moved.q_value < 1e-10  # highly significant ...
    assert abs(moved.change) < 0.05 and not moved.flagged  # ... but a 2-point change
    assert report.flagged == []
    # with a 1-point floor the same data alerts: the floor is what holds it back
    strict = detect_drift(
        {"cxr": today},
        {"cxr": baseline_days(np.random.default_rng(5), n)},
        HealthThresholds(drift_min_effect=0.01),
    )
    assert ("finding_0", "positive") in {(r.path, r.value) for r in strict.flagged}


def test_small_days_and_short_baselines_are_skipped_with_a_reason() -> None:
    rng = np.random.default_rng(3)
    shifted = sample_day(rng, 20, probabilities({"finding_1": 0.5}))
    report = detect_drift(
        {"cxr": shifted, "mammo": sample_day(rng, 100)},
        {"cxr": baseline_days(rng, 300), "mammo": baseline_days(rng, 100, days=3)},
    )
    assert report.results == []
    reasons = {s.schema_name: s.reason for s in report.skipped}
    assert "20 reports today" in reasons["cxr"] and "drift_min_daily_n=30" in reasons["cxr"]
    assert "3 baseline days" in reasons["mammo"]


def test_rare_finding_uses_the_exact_test_and_is_flagged() -> None:
    base = [
        DayCounts(n=100, counts={"Pneumothorax": {"positive": 1 if d % 4 == 0 else 0}})
        for d in range(28)
    ]  # 7 of 2800 = 0.25%
    today = DayCounts(n=100, counts={"Pneumothorax": {"positive": 9}})
    report = detect_drift({"cxr": today}, {"cxr": base})
    (result,) = report.results
    assert result.method == "fisher" and result.flagged and result.p_value < 1e-6


def test_ordinary_day_to_day_swings_do_not_alert() -> None:
    """Days alternate between 12% and 28% (case mix: e.g. ICU rounds on some days); a 27% day is
    ordinary. The binomial test alone would alert; the overdispersion-widened test does not."""
    base = [
        DayCounts(n=2000, counts={"Edema": {"positive": 240 if d % 2 else 560}}) for d in range(28)
    ]
    today = DayCounts(n=2000, counts={"Edema": {"positive": 540}})
    (result,) = detect_drift({"cxr": today}, {"cxr": base}).results
    assert result.dispersion > 50
    assert not result.flagged
    naive = two_proportion_z(540, 2000, sum(d.count("Edema", "positive") for d in base), 56_000)
    assert naive.p_value < 1e-9  # what a plain z-test would have said
    # a day far outside the usual swing still alerts
    extreme = DayCounts(n=2000, counts={"Edema": {"positive": 1500}})
    (result,) = detect_drift({"cxr": extreme}, {"cxr": base}).results
    assert result.flagged


def test_counts_larger_than_n_are_rejected() -> None:
    base = [DayCounts(n=50, counts={"Edema": {"positive": 5}})] * 10
    with pytest.raises(ValueError, match="more reports with the value than reports"):
        detect_drift({"cxr": DayCounts(n=40, counts={"Edema": {"positive": 41}})}, {"cxr": base})


# --- invalid-output rate and volume -------------------------------------------------------------


def group(
    schema: str, n_in: int, n_q: int, n_e: int, day: date = date(2025, 3, 29)
) -> MetricsGroup:
    return MetricsGroup(
        day=day,
        schema_name=schema,
        backend="hf",
        adapter_id=f"{schema}-lora-v3",
        n_in=n_in,
        n_loaded=n_in - n_q - n_e,
        n_quarantined=n_q,
        n_errored=n_e,
    )


def test_invalid_rate_threshold() -> None:
    findings, skipped = invalid_rate_findings(
        [group("cxr", 200, 9, 4), group("mammo", 100, 1, 0), group("ccta", 10, 5, 0)],
        HealthThresholds(alert_invalid_rate=0.05),
    )
    subjects = {f.group.label: f.group.invalid_rate for f in findings}
    # cxr 13/200 = 6.5% and the whole day 19/310 = 6.1% exceed 5%; mammo 1% does not
    assert subjects == {
        "cxr:hf:cxr-lora-v3": pytest.approx(13 / 200),
        "all:hf": pytest.approx(19 / 310),
    }
    assert [s.subject for s in skipped] == ["ccta:hf:ccta-lora-v3"]  # 10 reports: too few


def test_invalid_rate_total_over_small_schemas() -> None:
    findings, _ = invalid_rate_findings(
        [group("cxr", 200, 5, 0), group("ccta", 25, 10, 0)], HealthThresholds()
    )
    # cxr 2.5% is fine, ccta is too small to judge, but the day as a whole is 15/225 = 6.7%
    assert [f.group.schema_name for f in findings] == ["all"]
    assert findings[0].group.invalid_rate == pytest.approx(15 / 225)


def test_volume_collapse_against_the_same_weekday() -> None:
    today = date(2025, 3, 29)  # a Saturday
    volumes: dict[date, dict[str, int]] = {}
    for k in range(1, 29):
        d = today - timedelta(days=k)
        volumes[d] = {"mammo": 5 if d.weekday() >= 5 else 400, "cxr": 300}
    volumes[today] = {"mammo": 4, "cxr": 40}
    found = volume_findings(today, volumes, HealthThresholds())
    # quiet Saturday mammography is normal; CXR at 40 of a usual 300 is not
    assert [(f.schema_name, f.n_today, f.weekday_median) for f in found] == [("cxr", 40, 300)]
    volumes[today] = {"mammo": 4}  # cxr missing altogether counts as 0
    assert [f.n_today for f in volume_findings(today, volumes, HealthThresholds())] == [0]
