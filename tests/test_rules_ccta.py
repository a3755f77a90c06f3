"""The ccta@1 rule extractor: phrasings, CAD-RADS derivation, modifiers, evidence, fixtures."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from extractors.extract.base import EvidenceMap
from extractors.results import ReportInput
from extractors.rules import make_rule_extractor
from extractors.rules.ccta import CctaRuleExtractor
from extractors.schemas import get_schema
from extractors.text.document import Document

FIXTURES = Path(__file__).parent / "fixtures" / "ccta_reports.jsonl"


@pytest.fixture(scope="module")
def extractor() -> CctaRuleExtractor:
    return CctaRuleExtractor(get_schema("ccta"))


@pytest.fixture(scope="module")
def fixtures() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]


def run(extractor: CctaRuleExtractor, text: str) -> tuple[dict[str, Any], EvidenceMap]:
    labels, evidence = extractor.extract_doc(Document.from_text(text))
    return labels, evidence


def stenosis(extractor: CctaRuleExtractor, text: str) -> dict[str, str]:
    labels, _ = run(extractor, text)
    return {k: v for k, v in labels["stenosis"].items() if v != "not_mentioned"}


# --- per-vessel phrasing ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FINDINGS: Left main: patent, no plaque.", {"LM": "0"}),
        ("FINDINGS: Proximal LAD: mixed plaque with 50-69% stenosis.", {"LAD": "50-69"}),
        ("FINDINGS: There is an 80% stenosis of the mid RCA.", {"RCA": "70-99"}),
        ("FINDINGS: mid RCA 80% stenosis", {"RCA": "70-99"}),
        ("FINDINGS: Total occlusion of the proximal LCx.", {"LCx": "100"}),
        ("FINDINGS: CTO of the right coronary artery.", {"RCA": "100"}),
        ("FINDINGS: D1 mild. OM1 minimal.", {"D1": "25-49", "OM1": "1-24"}),
        ("FINDINGS: Ramus intermedius: 60% stenosis.", {"RI": "50-69"}),
        (
            "FINDINGS: R-PDA moderate stenosis. Posterolateral branch normal.",
            {"PDA": "50-69", "PLB": "0"},
        ),
        (
            "FINDINGS: The circumflex has mild disease and there is severe stenosis of the OM2.",
            {"LCx": "25-49", "OM2": "70-99"},
        ),
        (
            "FINDINGS: Mild stenosis of the LAD and moderate stenosis of the RCA.",
            {"LAD": "25-49", "RCA": "50-69"},
        ),
        ("FINDINGS: LAD 70%, RCA 50%, LCx normal.", {"LAD": "70-99", "RCA": "50-69", "LCx": "0"}),
        (
            "FINDINGS: Minimal plaque in the LAD, LCx and RCA.",
            {"LAD": "1-24", "LCx": "1-24", "RCA": "1-24"},
        ),
        ("FINDINGS: Moderate-to-severe stenosis of the proximal LAD.", {"LAD": "70-99"}),
        ("FINDINGS: Approximately 50-70% stenosis of the proximal LAD.", {"LAD": "50-69"}),
        ("FINDINGS: Mid LAD stenosis of 60-80%.", {"LAD": "70-99"}),
        ("FINDINGS: LAD: non-obstructive (<50%) plaque.", {"LAD": "25-49"}),
        ("FINDINGS: RCA: less than 25% stenosis.", {"RCA": "1-24"}),
        ("FINDINGS: LCx: calcified plaque without significant stenosis.", {"LCx": "1-24"}),
        ("FINDINGS: LM: no high-grade stenosis.", {"LM": "0"}),
        ("FINDINGS: Near-occlusive stenosis of the proximal LAD.", {"LAD": "70-99"}),
        ("FINDINGS: Subtotal occlusion of the mid RCA.", {"RCA": "70-99"}),
        ("findings: plad 30% stenosis. mrca no plaque.", {"LAD": "25-49", "RCA": "0"}),
        ("FINDINGS: LEFT MAIN: NORMAL. LAD: SEVERE STENOSIS.", {"LM": "0", "LAD": "70-99"}),
        # the vessel named on the line carries to its later sentences
        (
            "FINDINGS:\nRCA: A stent is present in the mid RCA. There is moderate in-stent "
            "restenosis.\nLAD: normal.",
            {"RCA": "50-69", "LAD": "0"},
        ),
        # a segment line under a vessel heading
        (
            "FINDINGS:\nLEFT ANTERIOR DESCENDING:\nProximal: 50-69% stenosis.\nMid: minimal plaque.",
            {"LAD": "50-69"},
        ),
        # "its" points back at the previous sentence's vessel
        (
            "FINDINGS: The RCA is dominant. There is a 70% stenosis in its mid segment.",
            {"RCA": "70-99"},
        ),
        ("FINDINGS: Stent in the proximal LAD with no in-stent restenosis.", {"LAD": "0"}),
        (
            "FINDINGS: The mid RCA is non-diagnostic due to motion artifact.",
            {"RCA": "non_diagnostic"},
        ),
        # severe motion artifact is not a severe stenosis
        ("FINDINGS: Severe motion artifact. LAD: minimal plaque.", {"LAD": "1-24"}),
        ("FINDINGS: Severe aortic stenosis. RCA: normal.", {"RCA": "0"}),
        ("FINDINGS: LV ejection fraction 35%. LAD: normal.", {"LAD": "0"}),
        # "normal origin" is anatomy, not a grade
        ("FINDINGS: Normal origin of the RCA.", {}),
    ],
)
def test_stenosis_phrasing(extractor: CctaRuleExtractor, text: str, expected: dict) -> None:
    assert stenosis(extractor, text) == expected


def test_segments_roll_up_to_the_vessel_maximum(extractor: CctaRuleExtractor) -> None:
    text = (
        "FINDINGS: Proximal LAD: minimal plaque. Mid LAD: 70-99% stenosis. Distal LAD: normal.\n"
        "IMPRESSION: Severe mid LAD stenosis."
    )
    assert stenosis(extractor, text) == {"LAD": "70-99"}


def test_grafts_are_one_vessel_and_their_target_is_not_native(extractor: CctaRuleExtractor) -> None:
    text = (
        "FINDINGS: LIMA to LAD: patent. SVG to OM1: occluded. SVG-RCA: 50% stenosis.\n"
        "Native LAD: 70-99% stenosis."
    )
    labels, _ = run(extractor, text)
    st = {k: v for k, v in labels["stenosis"].items() if v != "not_mentioned"}
    assert st == {"Graft": "100", "LAD": "70-99"}
    assert "G" in labels["modifiers"]


def test_global_negative_fills_unmentioned_main_vessels(extractor: CctaRuleExtractor) -> None:
    text = "FINDINGS: Mild plaque in the proximal LAD. No plaque or stenosis elsewhere."
    assert stenosis(extractor, text) == {"LM": "0", "LAD": "25-49", "LCx": "0", "RCA": "0"}
    # a non-coronary "normal" does not speak for the coronaries
    text = "FINDINGS: LAD: mild plaque. Non-coronary findings: normal."
    assert stenosis(extractor, text) == {"LAD": "25-49"}


# --- CAD-RADS category ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("IMPRESSION: CAD-RADS 4A/P2/HRP.", "4A"),
        ("IMPRESSION: CAD-RADS 2.0: 3 / P3 / S.", "3"),
        ("IMPRESSION: cad-rads 2.", "2"),
        ("IMPRESSION: CAD RADS 4b.", "4B"),
        ("IMPRESSION: CADRADS category 1.", "1"),
        ("IMPRESSION: CAD-RADS N.", "N"),
        ("IMPRESSION: CAD-RADS 0/E.", "0"),
    ],
)
def test_stated_category(extractor: CctaRuleExtractor, text: str, category: str) -> None:
    labels, evidence = run(extractor, text)
    assert labels["cad_rads"] == category
    assert evidence["cad_rads"][0].text.startswith(text.split(": ", 1)[1][:8])


def test_stated_category_wins_over_derivation(extractor: CctaRuleExtractor) -> None:
    labels, _ = run(extractor, "FINDINGS: LAD: 30% stenosis.\nIMPRESSION: CAD-RADS 3.")
    assert labels["cad_rads"] == "3"


def test_prior_categories_are_not_this_study(extractor: CctaRuleExtractor) -> None:
    text = (
        "INDICATION: Known CAD, CAD-RADS 4A in XXXX.\nCOMPARISON: CCTA XXXX (CAD-RADS 3).\n"
        "FINDINGS: LAD: minimal plaque.\nIMPRESSION: Previously CAD-RADS 3. Minimal plaque."
    )
    labels, _ = run(extractor, text)
    assert labels["cad_rads"] == "1"


@pytest.mark.parametrize(
    ("findings", "category"),
    [
        ("LM: no plaque. LAD: no plaque. LCx: no plaque. RCA: no plaque.", "0"),
        ("LAD: minimal plaque. RCA: normal.", "1"),
        ("LAD: mild stenosis.", "2"),
        ("RCA: moderate stenosis.", "3"),
        ("RCA: 85% stenosis. LAD: 30%.", "4A"),
        ("Left main: 50% stenosis.", "4B"),
        ("LAD: 70-99%. OM1: severe stenosis. PDA: 90% stenosis.", "4B"),
        ("LAD: 70-99%. D1: severe stenosis. RCA: 90% stenosis.", "4A"),
        ("LCx: occluded. LM: 50-69%.", "5"),
        ("Distal RCA non-diagnostic due to motion. LAD: mild stenosis.", "N"),
        ("Distal RCA non-diagnostic due to motion. LAD: 75% stenosis.", "4A"),
        ("The study is non-diagnostic due to severe motion artifact.", "N"),
    ],
)
def test_derived_category(extractor: CctaRuleExtractor, findings: str, category: str) -> None:
    labels, evidence = run(extractor, f"FINDINGS: {findings}")
    assert labels["cad_rads"] == category
    assert evidence["cad_rads"], "a derived category points at the sentences it came from"


def test_nothing_coronary_gives_null_labels(extractor: CctaRuleExtractor) -> None:
    labels, evidence = run(extractor, "FINDINGS: The lungs are clear. No pericardial effusion.")
    assert labels["cad_rads"] is None
    assert labels["plaque_burden"] is None
    assert labels["modifiers"] == []
    assert set(labels["stenosis"].values()) == {"not_mentioned"}
    assert evidence == {}


@pytest.mark.parametrize(
    "text",
    [
        "IMPRESSION: Severe three-vessel coronary artery disease. CAD-RADS 4.",
        "IMPRESSION: CAD-RADS 4: significant left main disease.",
        "IMPRESSION: CAD-RADS 4. Obstructive stenoses involving all three coronary arteries.",
        "FINDINGS: Proximal LAD 70-99%. Mid RCA 80%.\nIMPRESSION: Severe stenosis in all three "
        "epicardial vessels.",
        "IMPRESSION: 3-vessel obstructive CAD.",
        "IMPRESSION: Critical left main stenosis, CAD-RADS 4.",
    ],
)
def test_a_left_main_or_three_vessel_pattern_in_words_is_4b(
    extractor: CctaRuleExtractor, text: str
) -> None:
    labels, evidence = run(extractor, text)
    assert labels["cad_rads"] == "4B"
    assert evidence["cad_rads"]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("IMPRESSION: Mild three-vessel nonobstructive disease. CAD-RADS 2.", "2"),
        (
            "IMPRESSION: No significant left main disease. Severe mid LAD stenosis. CAD-RADS 4.",
            "4A",
        ),
        (
            "IMPRESSION: The prior CTA showed severe three-vessel disease. Now severe proximal RCA "
            "stenosis, CAD-RADS 4.",
            "4A",
        ),
        ("IMPRESSION: Moderate three-vessel disease, CAD-RADS 3.", "3"),
        ("FINDINGS: Occluded mid RCA. Severe three-vessel disease.", "5"),
        ("IMPRESSION: CAD-RADS 4A despite severe three-vessel disease on the prior study.", "4A"),
    ],
)
def test_words_that_are_no_4b_pattern_leave_the_category(
    extractor: CctaRuleExtractor, text: str, category: str
) -> None:
    assert run(extractor, text)[0]["cad_rads"] == category


# --- modifiers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "modifiers"),
    [
        (
            "FINDINGS: LAD 60% stenosis with positive remodeling and low-attenuation plaque.",
            ["HRP"],
        ),
        ("FINDINGS: LAD plaque with a napkin-ring sign and spotty calcification.", ["HRP"]),
        (
            "FINDINGS: LAD plaque with positive remodeling. No low-attenuation plaque, napkin-ring "
            "sign or spotty calcification.",
            [],
        ),
        ("FINDINGS: LAD 60% stenosis. High-risk plaque features: none.", []),
        ("FINDINGS: LAD 60% stenosis. FFRct 0.72 in the distal LAD.", ["I"]),
        ("FINDINGS: LAD 60% stenosis. FFRct 0.78 in the distal LAD (I+/-).", []),
        ("FINDINGS: RCA 60% stenosis. CT-FFR 0.86, not hemodynamically significant.", []),
        ("IMPRESSION: CAD-RADS 3/I+.", ["I"]),
        ("IMPRESSION: CAD-RADS 3/I-.", []),
        ("FINDINGS: Patent stent in the proximal LAD.", ["S"]),
        ("FINDINGS: No coronary stents. LAD normal.", []),
        ("INDICATION: S/p CABG.\nFINDINGS: LIMA to LAD patent.", ["G"]),
        ("FINDINGS: Anomalous origin of the LCx from the right coronary cusp.", ["E"]),
        ("FINDINGS: Coronary artery aneurysm of the proximal RCA measuring 8 mm.", ["E"]),
        ("FINDINGS: No coronary anomaly, aneurysm or fistula. LAD normal.", []),
        ("FINDINGS: Ascending aortic aneurysm measuring 4.6 cm. LAD normal.", []),
        ("FINDINGS: Myocardial bridging of the mid LAD. LAD otherwise normal.", []),
        ("FINDINGS: The distal LCx is not evaluable due to blooming. LAD: 80% stenosis.", ["N"]),
        ("IMPRESSION: CAD-RADS 4A/P2/HRP/S/G.", ["HRP", "S", "G"]),
    ],
)
def test_modifiers(extractor: CctaRuleExtractor, text: str, modifiers: list[str]) -> None:
    labels, evidence = run(extractor, text)
    assert labels["modifiers"] == modifiers
    assert bool(evidence.get("modifiers")) == bool(modifiers)


# --- plaque burden -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "burden"),
    [
        ("IMPRESSION: CAD-RADS 2/P2.", "P2"),
        ("FINDINGS: Plaque burden: P3.", "P3"),
        ("FINDINGS: LAD mild stenosis. Moderate plaque burden.", "P2"),
        ("FINDINGS: Overall mild plaque burden.", "P1"),
        ("FINDINGS: Extensive plaque burden.", "P4"),
        ("FINDINGS: Coronary artery calcium score: 145 Agatston units. LAD: mild stenosis.", "P2"),
        ("FINDINGS: Agatston score 1,240.", "P4"),
        ("FINDINGS: CAC 0. LAD: minimal noncalcified plaque.", None),
        ("FINDINGS: Segment involvement score of 6.", "P3"),
        ("FINDINGS: Calcium score 0. No coronary plaque or stenosis.", "P0"),
        # a stated P wins over the calcium score
        ("FINDINGS: Calcium score 850.\nIMPRESSION: CAD-RADS 3/P2.", "P2"),
    ],
)
def test_plaque_burden(extractor: CctaRuleExtractor, text: str, burden: str | None) -> None:
    labels, _ = run(extractor, text)
    assert labels["plaque_burden"] == burden


# --- evidence ------------------------------------------------------------------------------------
def test_evidence_offsets_point_into_the_report(
    extractor: CctaRuleExtractor, fixtures: list[dict[str, Any]]
) -> None:
    results = extractor.extract_batch(
        [ReportInput(report_id=r["report_id"], text=r["text"]) for r in fixtures]
    )
    schema = get_schema("ccta")
    allowed_paths = {"cad_rads", "plaque_burden", "modifiers"} | {
        f"stenosis.{k}" for k in schema.keys_for(schema.field("stenosis")) or []
    }
    for row, result in zip(fixtures, results, strict=True):
        assert result.status == "ok", result.error
        assert set(result.evidence) <= allowed_paths
        for path, spans in result.evidence.items():
            assert spans, path
            for ev in spans:
                assert row["text"][ev.start : ev.end] == ev.text
        # every vessel with a value has evidence; unmentioned ones have none
        for key, value in result.labels["stenosis"].items():
            assert (f"stenosis.{key}" in result.evidence) == (value != "not_mentioned"), key


def test_vessel_evidence_is_the_sentence_that_graded_it(extractor: CctaRuleExtractor) -> None:
    text = "FINDINGS: LM: normal. LAD: minimal plaque.\nMid LAD: 70-99% stenosis.\nRCA: normal."
    _, evidence = run(extractor, text)
    (ev,) = evidence["stenosis.LAD"]
    assert (ev.text, ev.start) == ("Mid LAD: 70-99% stenosis.", text.index("Mid LAD"))


# --- wiring --------------------------------------------------------------------------------------
def test_registered_as_the_ccta_rules_backend() -> None:
    assert isinstance(make_rule_extractor(get_schema("ccta")), CctaRuleExtractor)


def test_refuses_another_schema() -> None:
    with pytest.raises(ValueError, match="serves ccta"):
        CctaRuleExtractor(get_schema("cxr"))


def test_empty_report_is_an_error_result(extractor: CctaRuleExtractor) -> None:
    (result,) = extractor.extract_batch([ReportInput(report_id="x", text="   ")])
    assert result.status == "error" and "empty" in (result.error or "")


# --- the labelled fixtures -----------------------------------------------------------------------
def test_fixture_file_is_valid_and_covers_the_categories(fixtures: list[dict[str, Any]]) -> None:
    schema = get_schema("ccta")
    assert len(fixtures) >= 45
    assert len({r["report_id"] for r in fixtures}) == len(fixtures)
    for r in fixtures:
        assert set(r) == {"report_id", "text", "labels"}
        assert schema.validate_labels(r["labels"]) == r["labels"], r["report_id"]
    categories = Counter(r["labels"]["cad_rads"] for r in fixtures)
    assert set(categories) == {"0", "1", "2", "3", "4A", "4B", "5", "N"}
    modifiers = Counter(m for r in fixtures for m in r["labels"]["modifiers"])
    assert set(modifiers) == {"N", "HRP", "I", "S", "G", "E"}
    stated = sum("cad-rads" in r["text"].lower().replace("cad rads", "cad-rads") for r in fixtures)
    assert 0 < stated < len(fixtures), "some reports state CAD-RADS, some do not"


def test_fixture_accuracy(extractor: CctaRuleExtractor, fixtures: list[dict[str, Any]]) -> None:
    """Every fixture's category and modifiers exactly; >= 95% of (report, vessel) cells."""
    reports = [ReportInput(report_id=r["report_id"], text=r["text"]) for r in fixtures]
    results = extractor.extract_batch(reports)
    wrong_category, wrong_modifiers, cells, right_cells = [], [], 0, 0
    for row, result in zip(fixtures, results, strict=True):
        gold, pred = row["labels"], result.labels or {}
        if pred.get("cad_rads") != gold["cad_rads"]:
            wrong_category.append((row["report_id"], gold["cad_rads"], pred.get("cad_rads")))
        if pred.get("modifiers") != gold["modifiers"]:
            wrong_modifiers.append((row["report_id"], gold["modifiers"], pred.get("modifiers")))
        for vessel, value in gold["stenosis"].items():
            cells += 1
            right_cells += pred.get("stenosis", {}).get(vessel) == value
    print(f"\nccta rules on {len(fixtures)} fixtures: stenosis cells {right_cells}/{cells}")
    assert wrong_category == []
    assert wrong_modifiers == []
    assert right_cells / cells >= 0.95
