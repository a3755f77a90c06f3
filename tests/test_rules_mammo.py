"""Mammography rules (mammo@1): BI-RADS phrasings, density, laterality, negation, evidence,
the hand-written fixture reports and the CDD-CESM development split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extractors.gold import GoldError
from extractors.gold.cddcesm import cddcesm_report_text, gold_findings, load_cddcesm
from extractors.gold.normalize import normalize_birads, normalize_density
from extractors.results import ReportInput
from extractors.rules import make_rule_extractor
from extractors.rules.mammo import BIRADS_ORDER, MammoRuleExtractor, birads_rank, highest_birads
from extractors.schemas import get_schema
from extractors.text import Document

SCHEMA = get_schema("mammo")
EXTRACTOR = MammoRuleExtractor(SCHEMA)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mammo_reports.jsonl"
CDDCESM = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "mammo_cddcesm"
    / "breast_reports.csv"
)


def labels_of(text: str) -> dict[str, Any]:
    return EXTRACTOR.extract_doc(Document.from_text(text))[0]


def extract(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return EXTRACTOR.extract_doc(Document.from_text(text))


# --------------------------------------------------------------------------------------------
# BI-RADS
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IMPRESSION: BI-RADS 4.", "4"),
        ("IMPRESSION: BIRADS: 4", "4"),
        ("Impression: bi-rads category 4a", "4A"),
        ("IMPRESSION: BI-RADS Category 4A: Suspicious.", "4A"),
        ("IMPRESSION: BI-RADS 4 B: suspicious", "4B"),
        ("IMPRESSION: BI-RADS 4 a suspicious mass.", "4"),
        ("IMPRESSION: ACR BI-RADS® 4C.", "4C"),
        ("IMPRESSION: BI RADS 2", "2"),
        ("IMPRESSION: BI-RADS-3.", "3"),
        ("IMPRESSION: BIRADS4", "4"),
        ("opinion: benign looking mass (birads 3$2).", "3"),
        ("opinion: benign looking mass (birads 2$3$2).", "3"),
        ("IMPRESSION: Category 5.", "5"),
        ("ASSESSMENT: 4B - moderate suspicion for malignancy.", "4B"),
        ("Final assessment: BI-RADS 1.", "1"),
        ("IMPRESSION: BI-RADS V.", "5"),
        ("IMPRESSION: birads 0, needs spot compression views.", "0"),
        ("IMPRESSION: BI-RADS 6: known cancer.", "6"),
    ],
)
def test_birads_numeric_phrasings(text: str, expected: str) -> None:
    assert labels_of(text)["exam_birads"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IMPRESSION: Negative mammogram.", "1"),
        ("IMPRESSION: Negative.", "1"),
        ("IMPRESSION: Benign findings.", "2"),
        ("IMPRESSION: Benign.", "2"),
        ("IMPRESSION: Probably benign finding; short-interval follow-up.", "3"),
        ("IMPRESSION: Incomplete: need additional imaging evaluation.", "0"),
        ("IMPRESSION: Suspicious abnormality, biopsy should be considered.", "4"),
        ("IMPRESSION: Low suspicion for malignancy.", "4A"),
        ("IMPRESSION: High suspicion for malignancy.", "4C"),
        ("IMPRESSION: Highly suggestive of malignancy.", "5"),
        ("IMPRESSION: Known biopsy-proven malignancy.", "6"),
    ],
)
def test_birads_words_when_no_number_is_stated(text: str, expected: str) -> None:
    assert labels_of(text)["exam_birads"] == expected


def test_words_do_not_override_a_stated_number() -> None:
    text = "IMPRESSION: Probably benign mass, now stable for two years; benign. BI-RADS 2."
    assert labels_of(text)["exam_birads"] == "2"


def test_negated_assessment_words_are_not_read() -> None:
    assert labels_of("IMPRESSION: No suspicious abnormality.")["exam_birads"] is None


def test_prior_category_is_ignored() -> None:
    text = "IMPRESSION: The mass, previously assessed as BI-RADS 3, is unchanged. BI-RADS 2."
    assert labels_of(text)["exam_birads"] == "2"
    assert labels_of("IMPRESSION: BI-RADS 2 (previously BI-RADS 4).")["exam_birads"] == "2"


def test_ambiguous_acr_number_is_neither_birads_nor_density() -> None:
    labels = labels_of("IMPRESSION: ACR 2.")
    assert labels["exam_birads"] is None and labels["density"] is None


def test_birads_order_puts_zero_between_three_and_four() -> None:
    assert BIRADS_ORDER == SCHEMA_BIRADS_ORDER
    assert highest_birads(["3", "0"]) == "0"
    assert highest_birads(["0", "4"]) == "4"
    assert highest_birads(["4C", "4A", "5", "2"]) == "5"
    assert highest_birads(["6", "5"]) == "6"
    assert highest_birads([]) is None
    with pytest.raises(ValueError, match="unknown BI-RADS category '7'"):
        birads_rank("7")


SCHEMA_BIRADS_ORDER = ("1", "2", "3", "0", "4", "4A", "4B", "4C", "5", "6")


@pytest.mark.parametrize(
    ("right", "left", "exam"),
    [("0", "3", "0"), ("4", "0", "4"), ("1", "4A", "4A"), ("6", "2", "6"), ("2", "1", "2")],
)
def test_exam_birads_is_the_highest_breast(right: str, left: str, exam: str) -> None:
    text = (
        "FINDINGS: See below.\n"
        f"IMPRESSION:\nRight breast: BI-RADS {right}.\nLeft breast: BI-RADS {left}."
    )
    labels = labels_of(text)
    assert labels["birads"] == {"left": left, "right": right}
    assert labels["exam_birads"] == exam


def test_sided_birads_in_one_line() -> None:
    labels = labels_of("IMPRESSION: BI-RADS: right 1, left 4.")
    assert labels["birads"] == {"left": "4", "right": "1"}
    assert labels["exam_birads"] == "4"


def test_overall_statement_fills_only_unassessed_breasts() -> None:
    text = "IMPRESSION:\nRight breast: BI-RADS 2.\nOverall BI-RADS 4."
    labels = labels_of(text)
    assert labels["birads"] == {"left": "4", "right": "2"}
    assert labels["exam_birads"] == "4"


# --------------------------------------------------------------------------------------------
# Density
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The breasts are almost entirely fatty.", "a"),
        ("There are scattered areas of fibroglandular density.", "b"),
        ("Scattered fibroglandular densities.", "b"),
        ("The breasts are heterogeneously dense, which may obscure small masses.", "c"),
        ("The breast tissue is extremely dense.", "d"),
        ("Breast density: ACR C.", "c"),
        ("ACR density c.", "c"),
        ("Density type b.", "b"),
        ("Breast composition: d.", "d"),
        ("Category B density.", "b"),
        ("Density: ACR 3.", "c"),
    ],
)
def test_density_phrases(text: str, expected: str) -> None:
    assert labels_of(f"FINDINGS: {text}")["density"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "Dense breasts.",
        "Focal asymmetric density a few centimetres from the nipple.",
        "upper outer equal density oval shaped mass with partially obscured margin is seen.",
        "asymmetrical increased density and edema pattern.",
    ],
)
def test_no_density_from_finding_descriptions(text: str) -> None:
    assert labels_of(f"FINDINGS: {text}")["density"] is None


# --------------------------------------------------------------------------------------------
# Laterality
# --------------------------------------------------------------------------------------------
BILATERAL = """BILATERAL DIAGNOSTIC MAMMOGRAM
CLINICAL HISTORY: Left breast lump. Status post right lumpectomy 2019.
FINDINGS:
The breasts are heterogeneously dense (ACR c).
RIGHT BREAST:
Post-lumpectomy scar with surgical clips in the upper outer quadrant.
No suspicious mass or microcalcifications.
LEFT BREAST:
An 8 mm irregular mass at 2 o'clock with fine pleomorphic calcifications.
Enlarged left axillary lymph node.
IMPRESSION:
Right breast: BI-RADS 2, benign.
Left breast: BI-RADS Category 4B: Suspicious. Biopsy recommended."""


def test_laterality_in_a_bilateral_report_with_headers() -> None:
    labels = labels_of(BILATERAL)
    assert labels["birads"] == {"left": "4B", "right": "2"}
    assert labels["exam_birads"] == "4B"
    assert labels["density"] == "c"
    assert labels["mass"] == {"left": "present", "right": "absent"}
    assert labels["calcifications"] == {"left": "suspicious", "right": "absent"}
    assert labels["post_surgical_change"] == {"left": "not_mentioned", "right": "present"}
    assert labels["lymph_nodes"] == {"left": "present", "right": "not_mentioned"}


def test_per_breast_report_header_holds_for_the_whole_report() -> None:
    text = cddcesm_report_text(
        {
            "patient_id": "9",
            "side": "L",
            "dm_findings_text": "right upper outer punctate calcifications are noted.",
            "dm_opinion_text": "upper outer punctate calcifications (birads 3).",
        }
    )
    assert text.startswith("LEFT BREAST:\nFINDINGS: ")
    labels = labels_of(text)
    # the row is the left breast: a side word inside it does not move the findings
    assert labels["birads"] == {"left": "3", "right": None}
    assert labels["calcifications"] == {"left": "benign", "right": "not_mentioned"}


def test_sentence_side_and_clause_side() -> None:
    text = (
        "FINDINGS: Scattered benign calcifications bilaterally, with a spiculated mass in the "
        "left breast. Right breast benign-appearing cyst and left breast focal asymmetry."
    )
    labels = labels_of(text)
    assert labels["calcifications"] == {"left": "benign", "right": "benign"}
    assert labels["mass"] == {"left": "present", "right": "present"}
    assert labels["asymmetry"] == {"left": "focal", "right": "not_mentioned"}


@pytest.mark.parametrize(
    ("text", "left", "right"),
    [
        ("RT: BI-RADS 2.\nLT: BI-RADS 4A.", "4A", "2"),
        ("R: BI-RADS 1\nL: BI-RADS 3", "3", "1"),
        ("Right breast - BI-RADS 1. Left breast - BI-RADS 0.", "0", "1"),
        ("Mass in the left upper outer quadrant. BI-RADS 4.", "4", None),
        ("IMPRESSION: Bilateral benign calcifications. BI-RADS 2.", "2", "2"),
        ("IMPRESSION: Both breasts negative. BI-RADS 1.", "1", "1"),
    ],
)
def test_side_words_and_headers(text: str, left: str | None, right: str | None) -> None:
    assert labels_of(text)["birads"] == {"left": left, "right": right}


def test_exam_title_gives_the_side_of_a_unilateral_exam() -> None:
    text = "LEFT DIAGNOSTIC MAMMOGRAM\nFINDINGS: Focal asymmetry, no mass.\nIMPRESSION: BI-RADS 3."
    labels = labels_of(text)
    assert labels["birads"] == {"left": "3", "right": None}
    assert labels["asymmetry"] == {"left": "focal", "right": "not_mentioned"}
    assert labels["mass"] == {"left": "absent", "right": "not_mentioned"}


def test_unsided_bilateral_statement_covers_both_breasts() -> None:
    text = "Screening mammogram.\nFINDINGS: No suspicious mass.\nIMPRESSION: BI-RADS 1."
    labels = labels_of(text)
    assert labels["birads"] == {"left": "1", "right": "1"}
    assert labels["mass"] == {"left": "absent", "right": "absent"}


@pytest.mark.parametrize(
    "text",
    [
        "FINDINGS: History of right breast cancer treated with lumpectomy. A new irregular mass "
        "is seen in the left breast upper outer quadrant.\nIMPRESSION: Suspicious mass. BI-RADS 4.",
        "LEFT BREAST:\nFINDINGS: Irregular mass with indistinct margins, in a woman with a prior "
        "right breast carcinoma.\nIMPRESSION: BI-RADS 4.",
        "FINDINGS: Irregular mass in the left breast at 2 o'clock. The previous right lumpectomy "
        "site is unremarkable.\nIMPRESSION: Suspicious mass. BI-RADS 4.",
    ],
)
def test_a_side_in_a_history_phrase_is_not_the_current_findings_side(text: str) -> None:
    labels = labels_of(text)
    assert labels["mass"] == {"left": "present", "right": "not_mentioned"}
    assert labels["birads"] == {"left": "4", "right": None}


def test_a_history_phrase_places_what_it_says_on_its_own_side() -> None:
    text = (
        "FINDINGS: Status post left lumpectomy with surgical clips. New spiculated mass in the "
        "right breast at 10 o'clock.\nIMPRESSION: BI-RADS 4C."
    )
    labels = labels_of(text)
    assert labels["post_surgical_change"] == {"left": "present", "right": "not_mentioned"}
    assert labels["mass"] == {"left": "not_mentioned", "right": "present"}
    assert labels["birads"] == {"left": None, "right": "4C"}


def test_a_current_post_surgical_finding_keeps_its_side_and_sets_the_default() -> None:
    text = "FINDINGS: Post-lumpectomy scarring in the left breast. No suspicious mass.\nIMPRESSION: BI-RADS 2."
    labels = labels_of(text)
    assert labels["post_surgical_change"] == {"left": "present", "right": "not_mentioned"}
    assert labels["mass"] == {"left": "absent", "right": "not_mentioned"}
    assert labels["birads"] == {"left": "2", "right": None}


def test_indication_is_not_read() -> None:
    text = "INDICATION: Palpable mass, left breast; history of lumpectomy.\nFINDINGS: Negative."
    labels = labels_of(text)
    assert labels["mass"] == {"left": "not_mentioned", "right": "not_mentioned"}
    assert labels["post_surgical_change"] == {"left": "not_mentioned", "right": "not_mentioned"}


# --------------------------------------------------------------------------------------------
# Findings and negation
# --------------------------------------------------------------------------------------------
def _one(text: str, field: str) -> str:
    """Value of ``field`` for a single-breast statement (the left breast)."""
    return labels_of(f"LEFT BREAST:\nFINDINGS: {text}")[field]["left"]


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("no speculated mass lesions or suspicious microcalcifications.", "mass", "absent"),
        (
            "no speculated mass lesions or suspicious microcalcifications.",
            "calcifications",
            "absent",
        ),
        ("A mass is not seen.", "mass", "absent"),
        ("The previously seen mass has resolved.", "mass", "absent"),
        ("Mass without calcifications.", "mass", "present"),
        ("Mass without calcifications.", "calcifications", "absent"),
        ("No architectural distortion.", "architectural_distortion", "absent"),
        (
            "There is no evidence of a mass, distortion or suspicious calcifications.",
            "architectural_distortion",
            "absent",
        ),
        ("Possible mass in the upper outer quadrant.", "mass", "present"),
        ("The dense tissue may obscure small masses.", "mass", "not_mentioned"),
        (
            "status postoperative showing operative scar with no speculated mass lesions.",
            "mass",
            "absent",
        ),
        (
            "status postoperative showing operative scar with no speculated mass lesions.",
            "post_surgical_change",
            "present",
        ),
        ("upper outer speculated mass lesion is seen.", "mass", "present"),
        (
            "retroareolar asymmetrical increased density/ no speculated mass lesions.",
            "asymmetry",
            "present",
        ),
    ],
)
def test_negation(text: str, field: str, expected: str) -> None:
    assert _one(text, field) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Clustered microcalcifications.", "suspicious"),
        ("Fine pleomorphic calcifications.", "suspicious"),
        ("Fine linear branching calcifications.", "suspicious"),
        ("Amorphous calcifications in a segmental distribution.", "suspicious"),
        ("Suspicious microcalcifications.", "suspicious"),
        ("Coarse calcifications.", "benign"),
        ("Vascular calcifications are seen.", "benign"),
        ("Popcorn calcifications in a fibroadenoma.", "benign"),
        ("upper outer benign macrocalcification is noted.", "benign"),
        ("lower benign marocalifications.", "benign"),
        ("punctate calcifications are noted with no clusters seen.", "benign"),
        ("Microcalcifications are noted.", "present"),
        ("No calcifications.", "absent"),
    ],
)
def test_calcification_types(text: str, expected: str) -> None:
    assert _one(text, "calcifications") == expected


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("Focal asymmetry.", "asymmetry", "focal"),
        ("Global asymmetry, stable.", "asymmetry", "global"),
        ("A developing asymmetry.", "asymmetry", "developing"),
        ("upper outer quadrant asymmetrical increased density is seen.", "asymmetry", "present"),
        (
            "Architectural distortion in the upper outer quadrant.",
            "architectural_distortion",
            "present",
        ),
        ("Normal axillary lymph nodes.", "lymph_nodes", "absent"),
        ("Axillary lymph nodes are not enlarged.", "lymph_nodes", "absent"),
        ("Prominent axillary lymph node.", "lymph_nodes", "present"),
        ("Axillary lymphadenopathy.", "lymph_nodes", "present"),
        ("upper outer imln is noted.", "lymph_nodes", "present"),
        ("Benign-appearing intramammary lymph node.", "lymph_nodes", "present"),
        ("Skin thickening.", "skin_nipple_changes", "present"),
        ("Nipple retraction.", "skin_nipple_changes", "present"),
        (
            "edematous changes evidenced by increased skin thickness.",
            "skin_nipple_changes",
            "present",
        ),
        ("normal skin thickness and contour of breast.", "skin_nipple_changes", "absent"),
        ("The skin and nipple are unremarkable.", "skin_nipple_changes", "absent"),
        ("No skin thickening or nipple retraction.", "skin_nipple_changes", "absent"),
        ("Lumpectomy scar.", "post_surgical_change", "present"),
        ("Post-surgical changes with surgical clips.", "post_surgical_change", "present"),
        ("status post mastectomy.", "post_surgical_change", "present"),
        (
            "Status post neoadjuvant chemotherapy, no residual lesion.",
            "post_surgical_change",
            "not_mentioned",
        ),
        ("Recommend surgical consultation.", "post_surgical_change", "not_mentioned"),
    ],
)
def test_finding_types(text: str, field: str, expected: str) -> None:
    assert _one(text, field) == expected


def test_present_beats_absent_within_a_breast() -> None:
    text = "LEFT BREAST:\nFINDINGS: A 1 cm mass at 2 o'clock. No other mass."
    assert labels_of(text)["mass"]["left"] == "present"


# --------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------
def _check_evidence(text: str, labels: dict[str, Any], evidence: dict[str, Any]) -> None:
    for key, spans in evidence.items():
        assert spans, key
        for ev in spans:
            assert text[ev.start : ev.end] == ev.text
    # every stated value has evidence, and nothing unstated has any
    for f in SCHEMA.fields:
        keys = SCHEMA.keys_for(f)
        for k in keys or [None]:
            value = labels[f.name][k] if k else labels[f.name]
            path = f"{f.name}.{k}" if k else f.name
            stated = value not in (None, "not_mentioned")
            assert (path in evidence) == stated, path


def test_evidence_points_at_the_stating_sentence() -> None:
    labels, evidence = extract(BILATERAL)
    _check_evidence(BILATERAL, labels, evidence)
    assert [e.text for e in evidence["birads.left"]] == [
        "Left breast: BI-RADS Category 4B: Suspicious."
    ]
    assert [e.text for e in evidence["exam_birads"]] == evidence_texts(evidence["birads.left"])
    assert "pleomorphic" in evidence["calcifications.left"][0].text


def evidence_texts(spans: list[Any]) -> list[str]:
    return [e.text for e in spans]


# --------------------------------------------------------------------------------------------
# Fixtures, registry, batch contract
# --------------------------------------------------------------------------------------------
def _fixtures() -> list[dict[str, Any]]:
    with FIXTURES.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _expected(record: dict[str, Any]) -> dict[str, Any]:
    labels = SCHEMA.empty_labels()
    for field, value in record["expected"].items():
        if isinstance(value, dict):
            labels[field].update(value)
        else:
            labels[field] = value
    return SCHEMA.validate_labels(labels)


@pytest.mark.parametrize("record", _fixtures(), ids=lambda r: r["report_id"])
def test_fixture_reports(record: dict[str, Any]) -> None:
    labels, evidence = extract(record["text"])
    assert labels == _expected(record)
    _check_evidence(record["text"], labels, evidence)


def test_fixture_file_is_varied() -> None:
    records = _fixtures()
    assert 15 <= len(records) <= 30
    exams = {_expected(r)["exam_birads"] for r in records}
    assert {"0", "1", "2", "3", "4", "4A", "4B", "4C", "5", "6", None} <= exams


def test_registry_and_batch_results_validate() -> None:
    extractor = make_rule_extractor(SCHEMA)
    assert isinstance(extractor, MammoRuleExtractor)
    assert extractor.version == "mammo-rules-1"
    records = _fixtures()
    reports = [ReportInput(report_id=r["report_id"], text=r["text"]) for r in records]
    results = extractor.extract_batch(reports)
    assert [r.report_id for r in results] == [r["report_id"] for r in records]
    assert all(r.status == "ok" for r in results)
    assert results[0].to_json_dict()["schema"] == "mammo"


def test_rules_refuse_another_schema() -> None:
    with pytest.raises(ValueError, match="serves mammo"):
        MammoRuleExtractor(get_schema("cxr"))


# --------------------------------------------------------------------------------------------
# CDD-CESM adapter and the development split
# --------------------------------------------------------------------------------------------
def test_cddcesm_adapter_values() -> None:
    assert normalize_birads("3$2") == "3"
    assert normalize_birads("2$0") == "0"
    assert normalize_birads("4") == "4"
    assert normalize_birads("") is None
    with pytest.raises(GoldError, match="unknown categories"):
        normalize_birads("7")
    assert normalize_density("C") == "c"
    assert normalize_density("_") is None and normalize_density("") is None
    with pytest.raises(GoldError, match="side must be L or R"):
        cddcesm_report_text({"patient_id": "1", "side": "X", "dm_findings_text": "x"})
    text = cddcesm_report_text(
        {
            "patient_id": "1",
            "side": "R",
            "dm_findings_text": "a.",
            "dm_opinion_text": "b (birads 1).",
        }
    )
    assert text == "RIGHT BREAST:\nFINDINGS: a.\nOPINION: b (birads 1)."
    assert gold_findings("Normal", "normal")["mass"] == "absent"
    assert gold_findings("IMLN", "benign, IMLN") == {
        "mass": None,
        "calcifications": None,
        "asymmetry": None,
        "architectural_distortion": None,
        "lymph_nodes": "present",
        "skin_nipple_changes": None,
        "post_surgical_change": None,
    }


def test_cddcesm_loader_reports_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("patient_id,side\n1,L\n", encoding="utf-8")
    with pytest.raises(GoldError, match="missing columns"):
        load_cddcesm(path)


@pytest.fixture(scope="module")
def cddcesm_rows() -> list[dict[str, Any]]:
    if not CDDCESM.exists():
        pytest.skip(f"CDD-CESM development data not found at {CDDCESM}")
    return load_cddcesm(CDDCESM)


def test_cddcesm_birads_exact_match(cddcesm_rows: list[dict[str, Any]]) -> None:
    reports = [ReportInput(report_id=r["report_id"], text=r["text"]) for r in cddcesm_rows]
    results = EXTRACTOR.extract_batch(reports)
    assert all(r.status == "ok" for r in results)
    hits = 0
    for row, result in zip(cddcesm_rows, results, strict=True):
        side = row["gold"]["side"]
        other = "left" if side == "right" else "right"
        labels = result.labels or {}
        hits += labels["birads"][side] == row["gold"]["birads"]
        # a per-breast report says nothing about the other breast
        assert labels["birads"][other] is None, row["report_id"]
        for key, spans in result.evidence.items():
            for ev in spans:
                assert row["text"][ev.start : ev.end] == ev.text, (row["report_id"], key)
    accuracy = hits / len(cddcesm_rows)
    assert accuracy >= 0.97, f"BI-RADS exact match {accuracy:.4f} < 0.97"


def test_cddcesm_finding_agreement(cddcesm_rows: list[dict[str, Any]]) -> None:
    """Where the CDD-CESM finding labels speak to a field, the rules agree (>= 95%)."""
    reports = [ReportInput(report_id=r["report_id"], text=r["text"]) for r in cddcesm_rows]
    results = EXTRACTOR.extract_batch(reports)
    agree = total = 0
    for row, result in zip(cddcesm_rows, results, strict=True):
        side = row["gold"]["side"]
        labels = result.labels or {}
        for field, gold in gold_findings(row["gold"]["findings"], row["gold"]["tags"]).items():
            if gold is None:
                continue
            positive = labels[field][side] not in ("absent", "not_mentioned")
            agree += positive == (gold == "present")
            total += 1
    assert total > 500
    assert agree / total >= 0.95, f"finding agreement {agree}/{total}"
