"""Synthetic but realistic radiology reports for the demo and the benchmarks.

Written from our own templates (public report sets may not be redistributed): chest X-rays with
normal and abnormal findings, negations and hedges; bilateral mammograms with density, findings
and BI-RADS per breast; coronary CTAs with per-vessel stenosis and CAD-RADS 2.0. Each report
carries ``truth``, the few key labels the template intended, so the demo and tests can check
that the cohorts come out right. Identifiers are fake and only exist to be pseudonymized.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

ReportType = Literal["cxr", "mammo", "ccta"]

# share of each report type in a day's work list
MIX: tuple[tuple[ReportType, float], ...] = (("cxr", 0.55), ("mammo", 0.25), ("ccta", 0.20))


class DemoReport(BaseModel):
    """One synthetic RIS row: fake identifiers, exam metadata, report text and intended labels."""

    model_config = ConfigDict(frozen=True)

    patient_id: str
    accession_number: str
    modality: str
    procedure: str
    exam_at: AwareDatetime
    report_final_at: AwareDatetime
    report_type: ReportType
    text: str
    truth: dict[str, str]


def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


# -- chest X-ray ---------------------------------------------------------------------------------
_CXR_INDICATIONS = (
    "Cough and fever.",
    "Shortness of breath.",
    "Preoperative evaluation.",
    "Follow-up of pneumonia.",
    "Chest pain.",
    "Central line placement.",
    "Hypoxia.",
    "Fall, left chest wall pain.",
    "Congestive heart failure, worsening dyspnea.",
)


def _effusion(rng: random.Random, state: str) -> tuple[str, str]:
    """(findings sentence, impression phrase or '') for the pleural effusion state."""
    side = _pick(rng, "left", "right", "bilateral")
    size = _pick(rng, "small", "moderate", "trace", "large")
    plural = "effusions" if side == "bilateral" else "effusion"
    if state == "positive":
        return (
            _pick(
                rng,
                f"There is a {size} {side} pleural {plural}.",
                f"{size.capitalize()} {side} pleural {plural} with adjacent basilar opacity.",
                f"Increased {side} pleural {plural}, now {size}.",
            ),
            f"{size.capitalize()} {side} pleural {plural}.",
        )
    if state == "uncertain":
        return (
            _pick(
                rng,
                f"Blunting of the {side if side != 'bilateral' else 'left'} costophrenic angle "
                "may represent a small effusion versus pleural thickening.",
                f"Possible small {side} pleural {plural}.",
                "A small pleural effusion cannot be excluded.",
            ),
            _pick(rng, "Possible small pleural effusion.", ""),
        )
    if state == "negative":
        return (
            _pick(
                rng,
                "No pleural effusion or pneumothorax.",
                "There is no pleural effusion.",
                "No evidence of pleural effusion.",
                "The costophrenic angles are sharp without pleural effusion.",
            ),
            "",
        )
    return "", ""


def _cxr(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    portable = rng.random() < 0.3
    procedure = "XR CHEST 1 VIEW PORTABLE" if portable else "XR CHEST 2 VIEWS PA AND LATERAL"
    normal = rng.random() < 0.4
    effusion = (
        "negative"
        if normal
        else rng.choices(
            ["positive", "uncertain", "negative", "not_mentioned"], [0.35, 0.15, 0.35, 0.15]
        )[0]
    )
    findings: list[str] = []
    impression: list[str] = []
    if portable and rng.random() < 0.6:
        findings.append(
            _pick(
                rng,
                "Endotracheal tube tip is 4 cm above the carina.",
                "Right internal jugular central venous catheter terminates in the lower SVC.",
                "Left chest wall pacemaker with leads in the right atrium and right ventricle.",
                "Enteric tube courses below the diaphragm, tip not visualized.",
            )
        )
        impression.append("Support devices as above.")
    cardiomegaly = not normal and rng.random() < 0.35
    if cardiomegaly:
        findings.append(
            _pick(rng, "The heart is moderately enlarged.", "Mild cardiomegaly is unchanged.")
        )
        impression.append("Cardiomegaly.")
    else:
        findings.append(
            _pick(
                rng,
                "The heart size is normal.",
                "Cardiomediastinal silhouette is within normal limits.",
                "Heart size and mediastinal contours are normal.",
            )
        )
    lung = (
        "clear" if normal else rng.choice(["clear", "pneumonia", "atelectasis", "edema", "nodule"])
    )
    if lung == "clear":
        findings.append(
            _pick(
                rng,
                "The lungs are clear.",
                "No focal consolidation.",
                "Lungs are well expanded and clear.",
            )
        )
    elif lung == "pneumonia":
        lobe = _pick(rng, "right lower lobe", "left lower lobe", "right middle lobe", "lingula")
        hedge = _pick(
            rng,
            "concerning for pneumonia",
            "which may represent pneumonia",
            "consistent with pneumonia",
        )
        findings.append(f"Patchy airspace opacity in the {lobe}, {hedge}.")
        impression.append(f"{lobe.capitalize()} opacity {hedge}.")
    elif lung == "atelectasis":
        findings.append(
            "Linear opacity at the left lung base likely reflects subsegmental atelectasis."
        )
        impression.append("Left basilar atelectasis.")
    elif lung == "edema":
        findings.append(
            "Diffuse interstitial opacities and vascular congestion consistent with pulmonary edema."
        )
        impression.append("Pulmonary edema.")
    else:
        size = rng.choice([8, 11, 14, 22])
        findings.append(f"A {size} mm nodule projects over the right upper lobe.")
        impression.append(
            f"{size} mm right upper lobe nodule; recommend chest CT for further evaluation."
        )
    sentence, phrase = _effusion(rng, effusion)
    if sentence:
        findings.append(sentence)
    if phrase:
        impression.append(phrase)
    if effusion != "negative" or rng.random() < 0.5:
        findings.append(_pick(rng, "No pneumothorax.", "There is no pneumothorax."))
    findings.append(
        _pick(
            rng,
            "No acute osseous abnormality.",
            "Degenerative changes of the thoracic spine.",
            "Old healed left rib fractures.",
        )
    )
    if not impression:
        impression.append(
            _pick(
                rng,
                "No acute cardiopulmonary process.",
                "No acute cardiopulmonary abnormality.",
                "Normal chest radiograph.",
            )
        )
    comparison = _pick(
        rng, "None.", "Chest radiograph from 3 months prior.", "Prior study of last week."
    )
    technique = (
        "Single portable AP view of the chest."
        if portable
        else "PA and lateral views of the chest."
    )
    numbered = (
        impression if len(impression) == 1 else [f"{i}. {p}" for i, p in enumerate(impression, 1)]
    )
    text = "\n".join(
        [
            f"EXAMINATION: {procedure}",
            f"INDICATION: {rng.choice(_CXR_INDICATIONS)}",
            f"COMPARISON: {comparison}",
            f"TECHNIQUE: {technique}",
            "FINDINGS:",
            " ".join(findings),
            "IMPRESSION:",
            *numbered,
        ]
    )
    return procedure, text, {"Pleural Effusion": effusion}


# -- mammography ---------------------------------------------------------------------------------
_DENSITY = {
    "a": "The breasts are almost entirely fatty.",
    "b": "There are scattered areas of fibroglandular density.",
    "c": "The breasts are heterogeneously dense, which may obscure small masses.",
    "d": "The breasts are extremely dense, which lowers the sensitivity of mammography.",
}
_BIRADS_WORDS = {
    "1": "negative",
    "2": "benign",
    "3": "probably benign",
    "0": "incomplete, need additional imaging evaluation",
    "4": "suspicious",
    "4A": "low suspicion for malignancy",
    "4B": "moderate suspicion for malignancy",
    "4C": "high suspicion for malignancy",
    "5": "highly suggestive of malignancy",
}
# BI-RADS order for the exam category: 0 ranks between 3 and 4 (see the mammo schema)
_RANK = ["1", "2", "3", "0", "4", "4A", "4B", "4C", "5", "6"]


def _breast(rng: random.Random, side: str, category: str) -> str:
    clock = rng.choice(range(1, 13))
    quadrant = _pick(
        rng,
        "upper outer quadrant",
        "upper inner quadrant",
        "lower outer quadrant",
        "retroareolar region",
    )
    if category == "1":
        return _pick(
            rng,
            f"{side.capitalize()} breast: No mass, suspicious calcifications or architectural distortion.",
            f"{side.capitalize()} breast: There is no dominant mass, architectural distortion or suspicious microcalcification.",
        )
    if category == "2":
        return _pick(
            rng,
            f"{side.capitalize()} breast: Scattered benign-appearing coarse calcifications. No suspicious mass.",
            f"{side.capitalize()} breast: Stable post-lumpectomy changes with surgical clips and scar. No suspicious mass.",
            f"{side.capitalize()} breast: A circumscribed oval mass at {clock} o'clock is stable for 3 years, consistent with a fibroadenoma.",
        )
    if category == "3":
        return f"{side.capitalize()} breast: A focal asymmetry in the {quadrant} partially effaces on spot compression views, no associated calcifications."
    if category == "0":
        return f"{side.capitalize()} breast: A possible developing asymmetry in the {quadrant} seen on the CC view only."
    size = rng.choice([6, 9, 12, 15, 21, 28])
    if category in ("4", "4A", "4B"):
        return _pick(
            rng,
            f"{side.capitalize()} breast: Grouped fine pleomorphic calcifications spanning {size} mm in the {quadrant}.",
            f"{side.capitalize()} breast: An indistinct irregular mass measuring {size} mm at {clock} o'clock, 5 cm from the nipple.",
        )
    return (
        f"{side.capitalize()} breast: An irregular spiculated mass measuring {size} mm at {clock} o'clock with "
        "associated architectural distortion and skin retraction. An enlarged axillary lymph node with cortical thickening."
    )


def _mammo(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    screening = rng.random() < 0.6
    weights = (
        [0.55, 0.3, 0.05, 0.1, 0, 0, 0, 0, 0]
        if screening
        else [0.25, 0.2, 0.1, 0.05, 0.1, 0.1, 0.08, 0.05, 0.07]
    )
    cats = ["1", "2", "3", "0", "4", "4A", "4B", "4C", "5"]
    worse = rng.choices(cats, weights)[0]
    other = rng.choices(["1", "2"], [0.7, 0.3])[0]
    if _RANK.index(other) > _RANK.index(worse):
        worse, other = other, worse
    worse_side = rng.choice(["right", "left"])
    birads = {worse_side: worse, ("left" if worse_side == "right" else "right"): other}
    exam = max(birads.values(), key=_RANK.index)
    density = rng.choices("abcd", [0.1, 0.4, 0.4, 0.1])[0]
    procedure = (
        "MG SCREENING BILATERAL WITH TOMOSYNTHESIS" if screening else "MG DIAGNOSTIC BILATERAL"
    )
    history = (
        "Screening."
        if screening
        else _pick(
            rng,
            "Palpable lump.",
            "Recall from screening.",
            "Focal breast pain.",
            "Personal history of breast cancer, status post lumpectomy.",
        )
    )
    lines = [
        f"EXAM: {procedure}",
        f"CLINICAL HISTORY: {history}",
        f"COMPARISON: {_pick(rng, 'Prior mammograms from 2023 and 2024.', 'None available.', 'Mammogram of 1 year prior.')}",
        f"BREAST COMPOSITION: {_DENSITY[density]} (ACR density {density.upper()})",
        "FINDINGS:",
        _breast(rng, "right", birads["right"]),
        _breast(rng, "left", birads["left"]),
        "IMPRESSION:",
    ]
    for side in ("right", "left"):
        cat = birads[side]
        lines.append(f"{side.capitalize()}: BI-RADS {cat} - {_BIRADS_WORDS[cat]}.")
    if exam in ("4", "4A", "4B", "4C", "5"):
        lines.append("Ultrasound-guided or stereotactic biopsy is recommended.")
    elif exam == "0":
        lines.append("Recall for additional views and ultrasound.")
    lines.append(f"OVERALL ASSESSMENT: BI-RADS {exam}.")
    return procedure, "\n".join(lines), {"exam_birads": exam, "density": density}


# -- coronary CT angiography ---------------------------------------------------------------------
_GRADE_TEXT = {
    "0": ("no plaque or stenosis", 0),
    "1-24": ("minimal calcified plaque with less than 25% stenosis", 1),
    "25-49": ("mild (25-49%) stenosis due to mixed plaque", 2),
    "50-69": ("moderate (50-69%) stenosis due to noncalcified plaque", 3),
    "70-99": ("severe (70-99%) stenosis due to mixed plaque", 4),
    "100": ("total occlusion with distal reconstitution via collaterals", 5),
}
_VESSEL_NAMES = {
    "LM": "Left main",
    "LAD": "LAD",
    "LCx": "LCx",
    "RCA": "RCA",
}


def _cad_rads(grades: dict[str, str], nondiagnostic: bool) -> str:
    worst = max(_GRADE_TEXT[g][1] for g in grades.values())
    if worst == 5:
        return "5"
    severe = sum(1 for g in grades.values() if g == "70-99")
    if grades["LM"] in ("50-69", "70-99") or severe >= 3:
        return "4B"
    if worst == 4:
        return "4A"
    if nondiagnostic and worst <= 2:
        return "N"
    return str(worst)


def _ccta(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    profile = rng.choices(
        ["normal", "mild", "moderate", "severe", "occluded"], [0.3, 0.3, 0.2, 0.15, 0.05]
    )[0]
    grades = {v: "0" for v in _VESSEL_NAMES}
    pool = {
        "normal": ["0"],
        "mild": ["1-24", "25-49"],
        "moderate": ["25-49", "50-69"],
        "severe": ["50-69", "70-99"],
        "occluded": ["70-99", "100"],
    }[profile]
    diseased = rng.sample(["LAD", "LCx", "RCA"], k=rng.choice([1, 2]) if profile != "normal" else 0)
    for i, v in enumerate(diseased):
        grades[v] = pool[-1] if i == 0 else rng.choice(pool)
    if profile in ("moderate", "severe") and rng.random() < 0.1:
        grades["LM"] = "50-69"
    nondiagnostic_vessel = (
        rng.choice([v for v in ("LCx", "RCA") if grades[v] == "0"] or [None])
        if rng.random() < 0.1
        else None
    )
    cad = _cad_rads(grades, nondiagnostic_vessel is not None)
    score = {
        "normal": 0,
        "mild": rng.randint(5, 99),
        "moderate": rng.randint(100, 399),
        "severe": rng.randint(300, 1200),
        "occluded": rng.randint(400, 1500),
    }[profile]
    burden = (
        "P0"
        if score == 0
        else "P1"
        if score < 100
        else "P2"
        if score < 300
        else "P3"
        if score < 1000
        else "P4"
    )
    lines = [
        "EXAM: CT CORONARY ANGIOGRAPHY WITH CALCIUM SCORE",
        f"INDICATION: {_pick(rng, 'Atypical chest pain, intermediate pretest probability.', 'Exertional dyspnea.', 'Abnormal stress test.', 'Chest pain, family history of premature CAD.')}",
        f"TECHNIQUE: Prospectively ECG-triggered coronary CTA after 0.4 mg sublingual nitroglycerin. Heart rate {rng.randint(52, 66)} bpm. Image quality {_pick(rng, 'good', 'diagnostic', 'excellent')}.",
        "FINDINGS:",
        f"Coronary artery calcium score: {score} Agatston units.",
        f"Dominance: {_pick(rng, 'Right', 'Right', 'Left', 'Codominant')}.",
    ]
    for vessel, name in _VESSEL_NAMES.items():
        if vessel == nondiagnostic_vessel:
            lines.append(
                f"{name}: The mid segment is non-diagnostic due to motion artifact; the proximal segment has no plaque."
            )
            continue
        words = _GRADE_TEXT[grades[vessel]][0]
        segment = (
            ""
            if grades[vessel] == "0"
            else f" in the {_pick(rng, 'proximal', 'mid', 'distal')} segment"
        )
        lines.append(f"{name}: {words[0].upper()}{words[1:]}{segment}.")
    lines.append(
        _pick(
            rng,
            "Non-coronary cardiac findings: Normal chamber sizes. No pericardial effusion.",
            "Non-coronary cardiac findings: Mild left atrial enlargement.",
        )
    )
    lines.append("IMPRESSION:")
    summary = {
        "0": "No coronary artery plaque or stenosis.",
        "1": "Minimal nonobstructive coronary artery disease.",
        "2": "Mild nonobstructive coronary artery disease.",
        "3": "Moderate stenosis; consider functional assessment.",
        "4A": "Severe stenosis; consider invasive coronary angiography or functional assessment.",
        "4B": "Left main or three-vessel obstructive disease; invasive coronary angiography is recommended.",
        "5": "Total coronary occlusion; consider invasive coronary angiography and viability assessment.",
        "N": "Study non-diagnostic in part; no obstructive disease in the evaluable segments.",
    }[cad]
    modifier = "/N" if nondiagnostic_vessel and cad != "N" else ""
    category = f"CAD-RADS {cad}" if cad in ("0", "N") else f"CAD-RADS {cad}/{burden}{modifier}"
    lines.append(f"1. {summary} {category}.")
    lines.append(f"2. Coronary artery calcium score of {score}.")
    return "CT CORONARY ANGIOGRAPHY", "\n".join(lines), {"cad_rads": cad}


_MAKERS = {"cxr": (_cxr, "CR"), "mammo": (_mammo, "MG"), "ccta": (_ccta, "CT")}


def generate_reports(
    start: date = date(2025, 3, 3), days: int = 5, per_day: int = 80, seed: int = 7
) -> Iterator[DemoReport]:
    """``per_day`` reports on each of ``days`` days from ``start`` (deterministic for a seed).

    Report-final times fall inside their exam day (UTC), a few hours after the exam, so each
    report belongs to exactly one daily data interval. Patients recur across days.
    """
    rng = random.Random(seed)
    n_patients = max(10, int(days * per_day * 0.7))
    accession = 0
    for day in range(days):
        midnight = datetime.combine(start + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
        for _ in range(per_day):
            report_type = rng.choices([t for t, _ in MIX], [w for _, w in MIX])[0]
            maker, modality = _MAKERS[report_type]
            if report_type == "cxr" and rng.random() < 0.4:
                modality = "DX"
            procedure, text, truth = maker(rng)
            exam_at = midnight + timedelta(minutes=rng.randint(0, 20 * 60))
            final_at = exam_at + timedelta(minutes=rng.randint(20, 3 * 60))
            final_at = min(final_at, midnight + timedelta(hours=23, minutes=59))
            accession += 1
            yield DemoReport(
                patient_id=f"MRN{rng.randint(0, n_patients - 1) + 1_000_000:07d}",
                accession_number=f"ACC{start:%y%m}{accession:06d}",
                modality=modality,
                procedure=procedure,
                exam_at=exam_at,
                report_final_at=final_at,
                report_type=report_type,
                text=text,
                truth=truth,
            )
