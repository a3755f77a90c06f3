"""The chest X-ray rule extractor (cxr@1): findings, aggregation, No Finding, evidence, data."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from extractors.gold.chestxray14 import CHESTXRAY14_MAP
from extractors.results import ExtractionResult, ReportInput
from extractors.rules.cxr import CxrRuleExtractor
from extractors.schemas import get_schema

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cxr_openi"

EIGHT = [
    "Atelectasis",
    "Cardiomegaly",
    "Pleural Effusion",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Lung Lesion",
]


@pytest.fixture(scope="module")
def extractor() -> CxrRuleExtractor:
    return CxrRuleExtractor(get_schema("cxr"))


def run(extractor: CxrRuleExtractor, text: str) -> ExtractionResult:
    """Extract one report through the public batch path (labels are schema-validated there)."""
    (result,) = extractor.extract_batch([ReportInput(report_id="r1", text=text)])
    assert result.status == "ok", result.error
    return result


def labels(extractor: CxrRuleExtractor, text: str) -> dict[str, Any]:
    result = run(extractor, text)
    assert result.labels is not None
    return result.labels


# --- single findings ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "finding", "expected"),
    [
        ("FINDINGS: Mild cardiomegaly.", "Cardiomegaly", "positive"),
        ("FINDINGS: The heart is mildly enlarged.", "Cardiomegaly", "positive"),
        ("FINDINGS: Borderline heart size.", "Cardiomegaly", "positive"),
        ("FINDINGS: Heart size is normal.", "Cardiomegaly", "negative"),
        ("FINDINGS: The heart is not enlarged.", "Cardiomegaly", "negative"),
        ("FINDINGS: Heart size is upper limits of normal.", "Cardiomegaly", "negative"),
        ("FINDINGS: Heart size normal, aorta enlarged.", "Cardiomegaly", "negative"),
        ("FINDINGS: Heart size XXXX mildly enlarged.", "Cardiomegaly", "positive"),
        (
            "FINDINGS: Mild blunting of the right costophrenic angle.",
            "Pleural Effusion",
            "uncertain",
        ),
        ("FINDINGS: No costophrenic angle blunting.", "Pleural Effusion", "negative"),
        (
            "FINDINGS: The heart, pulmonary XXXX and mediastinum are within normal limits.",
            "Cardiomegaly",
            "negative",
        ),
        ("FINDINGS: Widened mediastinum.", "Enlarged Cardiomediastinum", "positive"),
        (
            "FINDINGS: Cardiomediastinal silhouette is within normal limits.",
            "Enlarged Cardiomediastinum",
            "negative",
        ),
        ("FINDINGS: Right lower lobe infiltrate.", "Lung Opacity", "positive"),
        ("FINDINGS: The lungs are clear.", "Lung Opacity", "negative"),
        ("FINDINGS: 8 mm nodule in the left upper lobe.", "Lung Lesion", "positive"),
        ("FINDINGS: Right upper lobe mass.", "Lung Lesion", "positive"),
        ("FINDINGS: Calcified granuloma in the left base.", "Lung Lesion", "not_mentioned"),
        ("FINDINGS: Mild pulmonary edema.", "Edema", "positive"),
        ("FINDINGS: Soft tissue edema of the chest wall.", "Edema", "not_mentioned"),
        ("FINDINGS: Left lower lobe consolidation.", "Consolidation", "positive"),
        ("FINDINGS: Right middle lobe pneumonia.", "Pneumonia", "positive"),
        ("FINDINGS: Sequela of prior granulomatous infection.", "Pneumonia", "not_mentioned"),
        ("FINDINGS: Bibasilar subsegmental atelectasis.", "Atelectasis", "positive"),
        ("FINDINGS: Collapse of the left lower lobe.", "Atelectasis", "positive"),
        ("FINDINGS: Small right apical pneumothorax.", "Pneumothorax", "positive"),
        ("FINDINGS: Small bilateral pleural effusions.", "Pleural Effusion", "positive"),
        ("FINDINGS: Small pericardial effusion.", "Pleural Effusion", "not_mentioned"),
        ("FINDINGS: Costophrenic angles are sharp.", "Pleural Effusion", "negative"),
        ("FINDINGS: Right apical pleural thickening.", "Pleural Other", "positive"),
        ("FINDINGS: Healed left rib fractures.", "Fracture", "positive"),
        ("FINDINGS: No acute bony abnormality.", "Fracture", "negative"),
        ("FINDINGS: Left chest wall pacemaker with leads in place.", "Support Devices", "positive"),
        ("FINDINGS: Endotracheal tube tip 4 cm above the carina.", "Support Devices", "positive"),
        ("FINDINGS: Possible small left effusion.", "Pleural Effusion", "uncertain"),
        ("FINDINGS: Atelectasis versus pneumonia at the left base.", "Pneumonia", "uncertain"),
        ("FINDINGS: Pneumothorax is not seen.", "Pneumothorax", "negative"),
    ],
)
def test_finding_states(
    extractor: CxrRuleExtractor, text: str, finding: str, expected: str
) -> None:
    assert labels(extractor, text)[finding] == expected


def test_unmentioned_findings_stay_not_mentioned(extractor: CxrRuleExtractor) -> None:
    out = labels(extractor, "FINDINGS: No pneumothorax.")
    assert out["Pneumothorax"] == "negative"
    assert out["Pleural Effusion"] == "not_mentioned"
    assert out["Edema"] == "not_mentioned"


def test_aggregation_positive_beats_uncertain_beats_negative(extractor: CxrRuleExtractor) -> None:
    text = (
        "FINDINGS: No pleural effusion. Possible small left effusion.\n"
        "IMPRESSION: Small left pleural effusion."
    )
    result = run(extractor, text)
    assert result.labels is not None
    assert result.labels["Pleural Effusion"] == "positive"
    assert [e.text for e in result.evidence["Pleural Effusion"]] == ["Small left pleural effusion."]

    out = labels(extractor, "FINDINGS: No pleural effusion. Possible small left effusion.")
    assert out["Pleural Effusion"] == "uncertain"


def test_hierarchy_is_not_applied(extractor: CxrRuleExtractor) -> None:
    out = labels(extractor, "IMPRESSION: Right lower lobe pneumonia. Mild cardiomegaly.")
    assert out["Pneumonia"] == "positive"
    assert out["Lung Opacity"] == "not_mentioned"
    assert out["Enlarged Cardiomediastinum"] == "not_mentioned"


def test_indication_and_comparison_are_ignored(extractor: CxrRuleExtractor) -> None:
    text = (
        "INDICATION: Rule out pneumonia, history of pneumothorax.\n"
        "COMPARISON: Prior exam showed a left effusion.\n"
        "FINDINGS: Lungs are clear."
    )
    out = labels(extractor, text)
    assert out["Pneumonia"] == "not_mentioned"
    assert out["Pneumothorax"] == "not_mentioned"
    assert out["Pleural Effusion"] == "not_mentioned"


# --- No Finding ----------------------------------------------------------------------------
def test_no_finding_positive_for_a_normal_report(extractor: CxrRuleExtractor) -> None:
    text = (
        "FINDINGS: The heart is normal in size. The lungs are clear. No pleural effusion or "
        "pneumothorax.\nIMPRESSION: No acute cardiopulmonary abnormality."
    )
    result = run(extractor, text)
    assert result.labels is not None
    assert result.labels["No Finding"] == "positive"
    assert [e.text for e in result.evidence["No Finding"]] == [
        "No acute cardiopulmonary abnormality."
    ]


def test_no_finding_allows_support_devices(extractor: CxrRuleExtractor) -> None:
    out = labels(
        extractor,
        "FINDINGS: Right PICC line tip in the SVC. No pneumothorax.\nIMPRESSION: Normal chest.",
    )
    assert out["Support Devices"] == "positive"
    assert out["No Finding"] == "positive"


@pytest.mark.parametrize(
    "text",
    [
        "FINDINGS: Mild cardiomegaly. No effusion.\nIMPRESSION: No acute cardiopulmonary disease.",
        "FINDINGS: Possible small effusion.\nIMPRESSION: No acute cardiopulmonary disease.",
        "FINDINGS: Degenerative changes of the thoracic spine.",
    ],
)
def test_no_finding_not_mentioned(extractor: CxrRuleExtractor, text: str) -> None:
    assert labels(extractor, text)["No Finding"] == "not_mentioned"


def test_no_finding_from_denied_findings_only(extractor: CxrRuleExtractor) -> None:
    result = run(extractor, "FINDINGS: No pneumothorax or pleural effusion.")
    assert result.labels is not None
    assert result.labels["No Finding"] == "positive"
    assert [e.text for e in result.evidence["No Finding"]] == [
        "No pneumothorax or pleural effusion."
    ]


# --- evidence --------------------------------------------------------------------------------
REPORT = (
    "INDICATION: Cough.\n"
    "FINDINGS: Mild cardiomegaly. There is a small left pleural effusion; no pneumothorax. "
    "Bibasilar opacities may represent atelectasis. Sternotomy wires are intact.\n"
    "IMPRESSION: 1. Cardiomegaly with small left effusion. 2. Possible atelectasis."
)


def test_evidence_offsets_point_into_the_report(extractor: CxrRuleExtractor) -> None:
    result = run(extractor, REPORT)
    assert result.labels is not None
    for field, value in result.labels.items():
        spans = result.evidence.get(field, [])
        if value == "not_mentioned":
            assert not spans, field
            continue
        assert spans, f"{field} is {value} without evidence"
        for ev in spans:
            assert REPORT[ev.start : ev.end] == ev.text
    assert result.labels["Cardiomegaly"] == "positive"
    assert result.labels["Pleural Effusion"] == "positive"
    assert result.labels["Pneumothorax"] == "negative"
    assert result.labels["Atelectasis"] == "uncertain"
    assert result.labels["Support Devices"] == "positive"
    assert [e.text for e in result.evidence["Cardiomegaly"]] == [
        "Mild cardiomegaly.",
        "Cardiomegaly with small left effusion.",
    ]


# --- robustness ------------------------------------------------------------------------------
def test_case_and_line_endings_do_not_change_labels(extractor: CxrRuleExtractor) -> None:
    base = labels(extractor, REPORT)
    assert labels(extractor, REPORT.upper()) == base
    assert labels(extractor, REPORT.lower()) == base
    crlf = REPORT.replace("\n", "\r\n")
    result = run(extractor, crlf)
    assert result.labels == base
    for spans in result.evidence.values():
        for ev in spans:
            assert crlf[ev.start : ev.end] == ev.text


def test_xxxx_masks(extractor: CxrRuleExtractor) -> None:
    text = (
        "FINDINGS: XXXX XXXX are intact. There is XXXX atelectasis in the left base. "
        "No XXXX of pleural effusion.\nIMPRESSION: XXXX right-sided XXXX in place."
    )
    out = labels(extractor, text)
    assert out["Atelectasis"] == "positive"
    assert out["Pleural Effusion"] == "negative"


def test_reports_without_headers_or_with_one_section(extractor: CxrRuleExtractor) -> None:
    out = labels(extractor, "Small right pneumothorax. No effusion.")
    assert out["Pneumothorax"] == "positive"
    assert out["Pleural Effusion"] == "negative"
    out = labels(extractor, "IMPRESSION: No acute cardiopulmonary disease.")
    assert out["No Finding"] == "positive"
    out = labels(extractor, "FINDINGS: \nIMPRESSION: Mild pulmonary edema.")
    assert out["Edema"] == "positive"


def test_empty_report_is_an_error_result(extractor: CxrRuleExtractor) -> None:
    (result,) = extractor.extract_batch([ReportInput(report_id="e", text="   ")])
    assert result.status == "error"
    assert result.error == "empty report text"


def test_wrong_schema_is_rejected() -> None:
    with pytest.raises(ValueError, match="serves cxr"):
        CxrRuleExtractor(get_schema("mammo"))


# --- lesions outside the lung, densities explained away ---------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "FINDINGS: Lytic lesion in the proximal left humerus.",
        "FINDINGS: Expansile lesion of the right 7th posterior rib.",
        "FINDINGS: Sclerotic lesion within a midthoracic vertebral body.",
        "FINDINGS: Left rib lesion, indeterminate.",
        "FINDINGS: Soft tissue mass along the right chest wall.",
        "FINDINGS: Skeletal metastases to the spine and ribs.",
        "FINDINGS: Partially imaged mass in the left breast.",
    ],
)
def test_lesions_of_bone_or_soft_tissue_are_no_lung_lesion(
    extractor: CxrRuleExtractor, text: str
) -> None:
    assert labels(extractor, text)["Lung Lesion"] == "not_mentioned"


@pytest.mark.parametrize(
    "text",
    [
        "FINDINGS: Nodular opacity in the right base is likely a nipple shadow.",
        "FINDINGS: Rounded density over the left 6th rib represents a healing fracture.",
        "FINDINGS: Small nodular densities compatible with prior granulomatous disease.",
        "FINDINGS: Nodular opacity at the left apex may represent overlying ECG leads.",
        "FINDINGS: Focal nodular density in the right midlung, probably an end-on vessel.",
        "FINDINGS: Nodular density at the right costophrenic angle due to a skin fold.",
    ],
)
def test_a_density_explained_away_in_its_sentence_is_no_lesion_or_opacity(
    extractor: CxrRuleExtractor, text: str
) -> None:
    out = labels(extractor, text)
    assert out["Lung Lesion"] == "not_mentioned"
    assert out["Lung Opacity"] == "not_mentioned"


@pytest.mark.parametrize(
    "text",
    [
        "FINDINGS: Spiculated mass in the left upper lobe abutting the chest wall.",
        "FINDINGS: Nodule projecting over the right 5th rib.",
        "FINDINGS: Right lower lobe nodule. No rib lesion.",
        "FINDINGS: 6 mm nodule in the right lower lobe, likely a granuloma.",
        "FINDINGS: Nodular opacity in the left upper lobe, which may represent a neoplasm.",
    ],
)
def test_lung_lesions_near_bone_words_or_hedged_stay_lesions(
    extractor: CxrRuleExtractor, text: str
) -> None:
    assert labels(extractor, text)["Lung Lesion"] == "positive"


# --- recommendations, requests and conditions; infection without the diagnosis --------------
@pytest.mark.parametrize(
    ("text", "finding"),
    [
        (
            "IMPRESSION: Patchy right basilar opacity; correlate clinically for infection.",
            "Pneumonia",
        ),
        ("IMPRESSION: Clinical correlation for pneumonia is advised.", "Pneumonia"),
        (
            "IMPRESSION: Recommend short-interval follow-up to document resolution of the left "
            "lower lobe pneumonia.",
            "Pneumonia",
        ),
        (
            "IMPRESSION: In the appropriate clinical context, the findings are compatible with "
            "pneumonia.",
            "Pneumonia",
        ),
        ("IMPRESSION: Recommend chest CT to characterize the nodule.", "Lung Lesion"),
        (
            "IMPRESSION: Follow-up radiographs in 6 weeks for the small effusion.",
            "Pleural Effusion",
        ),
    ],
)
def test_findings_named_in_recommendations_or_conditions_are_uncertain(
    extractor: CxrRuleExtractor, text: str, finding: str
) -> None:
    assert labels(extractor, text)[finding] == "uncertain"


def test_a_stated_finding_stays_positive_beside_its_recommendation(
    extractor: CxrRuleExtractor,
) -> None:
    text = "IMPRESSION: Right middle lobe pneumonia. Follow-up radiographs after treatment."
    assert labels(extractor, text)["Pneumonia"] == "positive"
    text = "IMPRESSION: Right lower lobe opacity, correlate clinically for pneumonia."
    out = labels(extractor, text)
    assert out["Lung Opacity"] == "positive" and out["Pneumonia"] == "uncertain"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FINDINGS: Left lower lobe airspace disease consistent with infection.", "uncertain"),
        ("FINDINGS: Findings compatible with an infectious process.", "uncertain"),
        ("FINDINGS: Infection in the right lung base.", "uncertain"),
        ("FINDINGS: No evidence of infection.", "negative"),
        ("FINDINGS: Right lower lobe infection, likely bacterial pneumonia.", "uncertain"),
        ("FINDINGS: Left lower lobe pneumonia with surrounding infection.", "positive"),
    ],
)
def test_infection_without_a_stated_pneumonia_is_uncertain(
    extractor: CxrRuleExtractor, text: str, expected: str
) -> None:
    assert labels(extractor, text)["Pneumonia"] == expected


# --- negation reaches a noun phrase, not the next clause --------------------------------------
@pytest.mark.parametrize(
    ("text", "finding"),
    [
        (
            "FINDINGS: No pneumothorax is seen and a small left effusion persists.",
            "Pleural Effusion",
        ),
        ("FINDINGS: No focal consolidation is identified, mild edema is present.", "Edema"),
        ("FINDINGS: No pneumothorax or consolidation, mild bibasilar atelectasis.", "Atelectasis"),
        ("FINDINGS: There is no effusion, and the heart is enlarged.", "Cardiomegaly"),
    ],
)
def test_a_finding_after_a_denied_clause_is_affirmed(
    extractor: CxrRuleExtractor, text: str, finding: str
) -> None:
    assert labels(extractor, text)[finding] == "positive"


@pytest.mark.parametrize(
    "text",
    [
        "FINDINGS: Fluid within the minor fissure.",
        "FINDINGS: Small left subpulmonic fluid.",
        "FINDINGS: Fissural fluid on the right.",
    ],
)
def test_fluid_in_a_fissure_is_pleural_effusion(extractor: CxrRuleExtractor, text: str) -> None:
    assert labels(extractor, text)["Pleural Effusion"] == "positive"


# --- the Open-i dev split --------------------------------------------------------------------
def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def test_openi_dev_f1(extractor: CxrRuleExtractor) -> None:
    reports_csv, gold_csv = DATA / "reports.csv", DATA / "labels_gold_chestxray14.csv"
    if not (reports_csv.exists() and gold_csv.exists()):
        pytest.skip(f"Open-i dev data not found under {DATA}")
    with reports_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with gold_csv.open(newline="", encoding="utf-8") as fh:
        gold = {r["uid"]: r for r in csv.DictReader(fh)}
    inputs = [
        ReportInput(
            report_id=r["uid"],
            text=f"FINDINGS: {r['findings']}\nIMPRESSION: {r['impression']}",
        )
        for r in rows
    ]
    results = extractor.extract_batch(inputs)
    counts = {f: [0, 0, 0] for f in EIGHT}  # tp, fp, fn
    for result in results:
        assert result.status == "ok" and result.labels is not None
        g = gold[str(result.report_id)]
        for f in EIGHT:
            predicted = result.labels[f] == "positive"
            actual = any(g[c] == "1" for c in CHESTXRAY14_MAP[f])
            counts[f][0] += predicted and actual
            counts[f][1] += predicted and not actual
            counts[f][2] += actual and not predicted
    micro = _f1(*(sum(c[i] for c in counts.values()) for i in range(3)))
    macro = sum(_f1(*c) for c in counts.values()) / len(counts)
    assert micro >= 0.90, f"micro-F1 {micro:.3f}"
    assert macro >= 0.85, f"macro-F1 {macro:.3f}"
