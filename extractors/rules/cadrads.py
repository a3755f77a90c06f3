"""CAD-RADS 2.0 arithmetic: stenosis grades, per-patient category and plaque burden.

Pure functions with no text handling, so the ccta rules, the evaluation code and tests can share
one reading of the published CAD-RADS 2.0 rules (Cury et al., JCCT 2022):

* Stenosis grades are the CAD-RADS bands ``0``, ``1-24``, ``25-49``, ``50-69``, ``70-99``,
  ``100``; "non_diagnostic" and "not_mentioned" are the two non-grade values of the schema.
* Category: 5 for any total occlusion; 4B for left main >= 50% or obstructive (>= 70%) disease
  in all three territories (LAD, LCx, RCA, each with its branches); 4A for any other 70-99%;
  3 for 50-69%; 2 for 25-49%; 1 for 1-24%; 0 when every graded segment is free of plaque.
* Non-diagnostic segments: they could hide a stenosis, so when one exists the category is
  ``N`` unless a diagnostic segment already shows >= 50% stenosis; then the category of the
  diagnostic segments stands and the modifier N is added (e.g. "4A/N"). This is CAD-RADS'
  "category N versus modifier N" rule.
* Plaque burden P1-P4 from the coronary artery calcium (CAC) score (1-100, 101-300, 301-999,
  >= 1000 Agatston units) or from the segment involvement score (<= 2, 3-4, 5-7, >= 8), both
  methods CAD-RADS 2.0 accepts; CAC 0 says nothing about non-calcified plaque, so it gives no P.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

GRADES: tuple[str, ...] = ("0", "1-24", "25-49", "50-69", "70-99", "100")
NON_DIAGNOSTIC = "non_diagnostic"
NOT_MENTIONED = "not_mentioned"

# Band boundaries a radiologist writes as the top of a range ("50-70%") while meaning the band
# below ("50-69%"): the upper bound is then read as exclusive.
_BAND_STARTS = (25, 50, 70, 100)

# Vessel key -> coronary territory used for the three-vessel (4B) rule. Ramus intermedius is
# counted with the circumflex (it supplies the lateral wall like an obtuse marginal); PDA and PLB
# with the RCA (right dominance assumed, the usual case). Branches without a schema key (D3, OM3,
# acute marginal) are accepted here so they can still raise the category.
TERRITORY: dict[str, str | None] = {
    "LM": None,
    "LAD": "LAD",
    "D1": "LAD",
    "D2": "LAD",
    "D3": "LAD",
    "LCx": "LCx",
    "OM1": "LCx",
    "OM2": "LCx",
    "OM3": "LCx",
    "RI": "LCx",
    "RCA": "RCA",
    "PDA": "RCA",
    "PLB": "RCA",
    "AM": "RCA",
    "Graft": None,
}

_WORD_GRADES: dict[str, str] = {
    "none": "0",
    "no stenosis": "0",
    "normal": "0",
    "minimal": "1-24",
    "mild": "25-49",
    "moderate": "50-69",
    "severe": "70-99",
    "high-grade": "70-99",
    "critical": "70-99",
    "subtotal": "70-99",
    "occluded": "100",
    "occlusion": "100",
    "total occlusion": "100",
}


def grade_rank(grade: str) -> int:
    """Position of a stenosis grade in :data:`GRADES` (0 = no stenosis ... 5 = occluded)."""
    try:
        return GRADES.index(grade)
    except ValueError:
        raise ValueError(f"{grade!r} is not a stenosis grade; expected one of {GRADES}") from None


def max_grade(grades: Iterable[str]) -> str | None:
    """The most severe grade of ``grades`` (None when empty)."""
    best: str | None = None
    best_rank = -1
    for g in grades:
        rank = grade_rank(g)
        if rank > best_rank:
            best, best_rank = g, rank
    return best


def grade_of_percent(percent: float) -> str:
    """The CAD-RADS band holding a diameter stenosis percentage (0-100)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"a stenosis percentage lies in 0-100, got {percent}")
    if percent == 0:
        return "0"
    if percent < 25:
        return "1-24"
    if percent < 50:
        return "25-49"
    if percent < 70:
        return "50-69"
    if percent < 100:
        return "70-99"
    return "100"


def grade_of_range(low: float, high: float) -> str:
    """The band of a reported range: the one holding the maximal estimate ``high``.

    A range whose top is a band start and whose bottom lies below it ("50-70%", "25-50%") is
    read as the band written loosely ("50-69%", "25-49%"), so the top counts as exclusive.
    """
    if low > high:
        low, high = high, low
    if high in _BAND_STARTS and low < high:
        return grade_of_percent(high - 1)
    return grade_of_percent(high)


def grade_of_words(words: str) -> str | None:
    """The grade a descriptive word stands for ("mild" -> "25-49"); None when unknown."""
    key = " ".join(words.lower().replace("_", " ").split())
    key = key.replace("high grade", "high-grade").replace("sub-total", "subtotal")
    return _WORD_GRADES.get(key)


def roll_up(grades: Iterable[str], non_diagnostic: bool) -> str:
    """One vessel's value from its segments' grades and whether a segment was non-diagnostic.

    The maximum grade, except that a non-diagnostic segment makes the vessel
    ``non_diagnostic`` unless a diagnostic segment already reaches 50% (the same rule as
    category N versus modifier N). ``not_mentioned`` when nothing was said.
    """
    best = max_grade(grades)
    if non_diagnostic and (best is None or grade_rank(best) < grade_rank("50-69")):
        return NON_DIAGNOSTIC
    return best if best is not None else NOT_MENTIONED


def derive_cad_rads(
    stenosis: Mapping[str, str], *, non_diagnostic: bool | None = None
) -> str | None:
    """The CAD-RADS 2.0 category from per-vessel values (schema keys plus D3/OM3/AM).

    ``non_diagnostic`` says whether any segment was non-diagnostic; by default it is whether any
    vessel's value is ``non_diagnostic`` (pass True when a segment was non-diagnostic inside a
    vessel whose value is a >= 50% grade, or the whole study was). Bypass grafts count like
    native vessels. Returns None when nothing was graded and nothing was non-diagnostic.
    """
    unknown = sorted(k for k in stenosis if k not in TERRITORY)
    if unknown:
        raise ValueError(f"unknown vessel keys {unknown}; known: {sorted(TERRITORY)}")
    graded = {k: v for k, v in stenosis.items() if v not in (NON_DIAGNOSTIC, NOT_MENTIONED)}
    if non_diagnostic is None:
        non_diagnostic = any(v == NON_DIAGNOSTIC for v in stenosis.values())
    best = max_grade(graded.values())
    if best is None:
        return "N" if non_diagnostic else None
    rank = grade_rank(best)
    if non_diagnostic and rank < grade_rank("50-69"):
        return "N"
    if rank == grade_rank("100"):
        return "5"
    left_main = graded.get("LM")
    severe_territories = {
        TERRITORY[k] for k, v in graded.items() if TERRITORY[k] and grade_rank(v) >= 4
    }
    if (left_main and grade_rank(left_main) >= grade_rank("50-69")) or len(severe_territories) == 3:
        return "4B"
    return {4: "4A", 3: "3", 2: "2", 1: "1", 0: "0"}[rank]


def plaque_burden_from_cac(agatston: float) -> str | None:
    """P1-P4 from the Agatston calcium score; None for 0 (non-calcified plaque is invisible)."""
    if agatston < 0:
        raise ValueError(f"a calcium score is >= 0, got {agatston}")
    if agatston == 0:
        return None
    if agatston <= 100:
        return "P1"
    if agatston <= 300:
        return "P2"
    if agatston < 1000:
        return "P3"
    return "P4"


def plaque_burden_from_sis(segments: int) -> str | None:
    """P1-P4 from the segment involvement score (segments with plaque); None for 0."""
    if segments < 0:
        raise ValueError(f"a segment involvement score is >= 0, got {segments}")
    if segments == 0:
        return None
    if segments <= 2:
        return "P1"
    if segments <= 4:
        return "P2"
    if segments <= 7:
        return "P3"
    return "P4"


_BURDEN_WORDS = {
    "none": "P0",
    "no": "P0",
    "minimal": "P1",
    "mild": "P1",
    "moderate": "P2",
    "severe": "P3",
    "heavy": "P3",
    "extensive": "P4",
}


def plaque_burden_from_words(word: str) -> str | None:
    """P0-P4 from the adjective of "mild/moderate/severe/extensive plaque burden"."""
    return _BURDEN_WORDS.get(word.lower().strip())
