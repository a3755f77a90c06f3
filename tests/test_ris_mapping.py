"""Built-in exam patterns: which procedure names are which modality and report type."""

from __future__ import annotations

import pytest

from extractors.ris.mapping import ExamMapper, ExamRule, default_report_type, infer_modality


@pytest.mark.parametrize(
    ("procedure", "modality", "report_type"),
    [
        ("XR CHEST 2 VIEWS", "DX", "cxr"),
        ("XR CHEST PA AND LATERAL", "DX", "cxr"),
        ("Radiograph thorax AP", "DX", "cxr"),
        ("XR Thoracic Spine 1 View", "DX", None),
        ("XR L-SPINE PA AND LAT", "DX", None),
        ("XR RIBS LEFT WITH CHEST", "DX", None),
        ("XR KNEE 3 VIEWS", "DX", None),
        ("MAMMO SCREENING BILATERAL", "MG", "mammo"),
        ("CTA CORONARY ARTERIES", "CT", "ccta"),
        ("CT CHEST WITHOUT CONTRAST", "CT", None),
        ("PETCT AC+NAC ABDOMEN", "PT", None),
        ("PET/CT WHOLE BODY", "PT", None),
        ("NM BONE SCAN WHOLE BODY", "NM", None),
        ("US ABDOMEN COMPLETE", "US", None),
        ("MRI BRAIN W WO CONTRAST", "MR", None),
        ("OUTSIDE FILM REVIEW", None, None),
    ],
)
def test_builtin_patterns(procedure: str, modality: str | None, report_type: str | None) -> None:
    assert infer_modality(procedure) == modality
    if modality is not None:
        assert default_report_type(modality, procedure) == report_type
    decision = ExamMapper().decide(None, procedure)
    assert (decision.modality, decision.report_type, decision.rule) == (
        modality,
        report_type,
        "built-in",
    )


def test_the_message_modality_wins_over_the_name_and_a_site_rule_over_both() -> None:
    assert ExamMapper().decide("71046", "XR CHEST", "CR").modality == "CR"
    mapper = ExamMapper([ExamRule(code="71046", modality="dx", report_type="CXR")])
    decision = mapper.decide(["LOINC-1", "71046"], "anything", "CR")
    assert (decision.modality, decision.report_type, decision.rule) == ("DX", "cxr", "site rule 1")
    assert mapper.unmapped == {}
