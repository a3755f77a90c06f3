"""CAD-RADS 2.0 arithmetic: grades, ranges, per-patient category and plaque burden."""

from __future__ import annotations

import pytest

from extractors.rules.cadrads import (
    GRADES,
    derive_cad_rads,
    grade_of_percent,
    grade_of_range,
    grade_of_words,
    max_grade,
    plaque_burden_from_cac,
    plaque_burden_from_sis,
    plaque_burden_from_words,
    roll_up,
)


@pytest.mark.parametrize(
    ("percent", "grade"),
    [
        (0, "0"),
        (1, "1-24"),
        (24, "1-24"),
        (24.5, "1-24"),
        (25, "25-49"),
        (49, "25-49"),
        (50, "50-69"),
        (69, "50-69"),
        (70, "70-99"),
        (99, "70-99"),
        (100, "100"),
    ],
)
def test_percent_bands(percent: float, grade: str) -> None:
    assert grade_of_percent(percent) == grade


@pytest.mark.parametrize("bad", [-1, 101, 150])
def test_percent_out_of_range_is_an_error(bad: float) -> None:
    with pytest.raises(ValueError, match="0-100"):
        grade_of_percent(bad)


@pytest.mark.parametrize(
    ("low", "high", "grade"),
    [
        (50, 69, "50-69"),  # a CAD-RADS band as written
        (50, 70, "50-69"),  # the band written loosely
        (25, 50, "25-49"),
        (40, 50, "25-49"),
        (60, 80, "70-99"),  # otherwise the maximal estimate decides
        (70, 90, "70-99"),
        (30, 40, "25-49"),
        (70, 100, "70-99"),
        (90, 100, "70-99"),
        (69, 50, "50-69"),  # reversed bounds are tolerated
    ],
)
def test_ranges_take_the_band_of_the_maximal_estimate(low: int, high: int, grade: str) -> None:
    assert grade_of_range(low, high) == grade


@pytest.mark.parametrize(
    ("words", "grade"),
    [
        ("minimal", "1-24"),
        ("Mild", "25-49"),
        ("moderate", "50-69"),
        ("SEVERE", "70-99"),
        ("high grade", "70-99"),
        ("sub-total", "70-99"),
        ("occluded", "100"),
        ("total  occlusion", "100"),
        ("no stenosis", "0"),
        ("normal", "0"),
        ("dominant", None),
    ],
)
def test_grade_words(words: str, grade: str | None) -> None:
    assert grade_of_words(words) == grade


def test_max_grade_orders_bands_not_strings() -> None:
    assert max_grade(["25-49", "100", "70-99"]) == "100"
    assert max_grade(["1-24", "0"]) == "1-24"
    assert max_grade([]) is None
    with pytest.raises(ValueError, match="not a stenosis grade"):
        max_grade(["moderate"])


def test_roll_up_non_diagnostic_segments() -> None:
    assert roll_up(["25-49", "0"], non_diagnostic=False) == "25-49"
    # a non-diagnostic segment could hide more than the mild stenosis seen elsewhere
    assert roll_up(["25-49"], non_diagnostic=True) == "non_diagnostic"
    assert roll_up([], non_diagnostic=True) == "non_diagnostic"
    # a >= 50% stenosis stands; the report-level modifier N records the gap
    assert roll_up(["70-99"], non_diagnostic=True) == "70-99"
    assert roll_up([], non_diagnostic=False) == "not_mentioned"


def _vessels(**grades: str) -> dict[str, str]:
    out = dict.fromkeys(
        ["LM", "LAD", "LCx", "RCA", "D1", "D2", "OM1", "OM2", "RI", "PDA", "PLB", "Graft"],
        "not_mentioned",
    )
    out.update(grades)
    return out


@pytest.mark.parametrize(
    ("grades", "category"),
    [
        ({"LM": "0", "LAD": "0", "LCx": "0", "RCA": "0"}, "0"),
        ({"LAD": "1-24", "RCA": "0"}, "1"),
        ({"LAD": "25-49", "LCx": "1-24"}, "2"),
        ({"RI": "50-69"}, "3"),
        ({"RCA": "70-99"}, "4A"),
        ({"D1": "70-99"}, "4A"),  # a branch counts
        ({"LAD": "70-99", "RCA": "70-99", "LM": "25-49"}, "4A"),  # two vessels only
        ({"LM": "50-69"}, "4B"),  # left main >= 50%
        ({"LM": "70-99", "RCA": "0"}, "4B"),
        ({"LAD": "70-99", "LCx": "70-99", "RCA": "70-99"}, "4B"),  # three-vessel
        ({"D2": "70-99", "OM1": "70-99", "PDA": "70-99"}, "4B"),  # territories incl. branches
        ({"LAD": "70-99", "RI": "70-99", "PLB": "70-99"}, "4B"),
        ({"LAD": "70-99", "D1": "70-99", "RCA": "70-99"}, "4A"),  # LAD territory twice
        ({"LCx": "100", "LM": "50-69"}, "5"),  # occlusion outranks 4B
        ({"OM2": "100"}, "5"),
        ({"Graft": "70-99", "LAD": "25-49"}, "4A"),  # grafts count like vessels
        ({"D3": "70-99", "LAD": "1-24"}, "4A"),  # branches without a schema key
        ({"AM": "100"}, "5"),
    ],
)
def test_derived_category(grades: dict[str, str], category: str) -> None:
    assert derive_cad_rads(_vessels(**grades)) == category


def test_non_diagnostic_gives_category_n_unless_a_diagnostic_segment_is_obstructive() -> None:
    assert derive_cad_rads(_vessels(RCA="non_diagnostic", LAD="1-24")) == "N"
    assert derive_cad_rads(_vessels(RCA="non_diagnostic", LAD="25-49")) == "N"
    assert derive_cad_rads(_vessels(RCA="non_diagnostic")) == "N"
    assert derive_cad_rads(_vessels(LCx="non_diagnostic", LAD="50-69")) == "3"
    assert derive_cad_rads(_vessels(LCx="non_diagnostic", LAD="70-99")) == "4A"
    assert derive_cad_rads(_vessels(LCx="non_diagnostic", LM="50-69")) == "4B"
    assert derive_cad_rads(_vessels(LCx="non_diagnostic", RCA="100")) == "5"
    # a whole study that is non-diagnostic, with no vessel named
    assert derive_cad_rads(_vessels(LAD="0"), non_diagnostic=True) == "N"
    assert derive_cad_rads(_vessels(LAD="0"), non_diagnostic=False) == "0"


def test_nothing_said_derives_nothing() -> None:
    assert derive_cad_rads(_vessels()) is None


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="unknown vessel keys"):
        derive_cad_rads({"LADD": "0"})
    with pytest.raises(ValueError, match="'severe' is not a stenosis grade"):
        derive_cad_rads({"LAD": "severe"})


@pytest.mark.parametrize(
    ("cac", "burden"),
    [
        (0, None),
        (1, "P1"),
        (100, "P1"),
        (101, "P2"),
        (300, "P2"),
        (301, "P3"),
        (999, "P3"),
        (1000, "P4"),
        (2340, "P4"),
    ],
)
def test_plaque_burden_from_calcium_score(cac: float, burden: str | None) -> None:
    assert plaque_burden_from_cac(cac) == burden


@pytest.mark.parametrize(
    ("sis", "burden"),
    [
        (0, None),
        (1, "P1"),
        (2, "P1"),
        (3, "P2"),
        (4, "P2"),
        (5, "P3"),
        (7, "P3"),
        (8, "P4"),
        (12, "P4"),
    ],
)
def test_plaque_burden_from_segment_involvement(sis: int, burden: str | None) -> None:
    assert plaque_burden_from_sis(sis) == burden


def test_plaque_burden_words_and_errors() -> None:
    assert [plaque_burden_from_words(w) for w in ("mild", "Moderate", "severe", "extensive")] == [
        "P1",
        "P2",
        "P3",
        "P4",
    ]
    assert plaque_burden_from_words("huge") is None
    with pytest.raises(ValueError):
        plaque_burden_from_cac(-5)
    with pytest.raises(ValueError):
        plaque_burden_from_sis(-1)


def test_grades_match_the_schema() -> None:
    from extractors.schemas import get_schema

    schema = get_schema("ccta")
    allowed = schema.allowed_values(schema.field("stenosis")) or []
    assert [g for g in allowed if g not in ("non_diagnostic", "not_mentioned")] == list(GRADES)
