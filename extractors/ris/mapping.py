"""Which modality a procedure is, and which extraction schema a report needs.

A RIS names exams in its own words; these defaults cover the usual codes and procedure names
(chest radiographs → ``cxr``, mammography → ``mammo``, coronary CT angiography → ``ccta``). Sites
with other conventions pass their own function to the connector.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ReportTypeFn = Callable[[str, str | None], str | None]

RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "XR"})

_MODALITY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("MG", re.compile(r"\bmammo|\bMG\b|\btomosynthesis\b|\bDBT\b", re.I)),
    ("CT", re.compile(r"\bCTA?\b|computed tomograph|\bCCTA\b", re.I)),
    ("MR", re.compile(r"\bMRI?\b|\bMRA\b|magnetic resonance", re.I)),
    ("US", re.compile(r"\bUS\b|ultrasound|sonogra", re.I)),
    ("DX", re.compile(r"\bX-?RAY\b|\bXR\b|\bCXR\b|radiograph", re.I)),
)

_CHEST = re.compile(r"\bchest\b|\bthora(x|cic)\b|\bCXR\b|\blungs?\b|\bPA\b.*\blat", re.I)
_CORONARY = re.compile(r"\bcoronar|\bCCTA\b|\bcardiac\b|\bheart\b|\bcalcium scor|\bCTCA\b", re.I)


def normalize_modality(value: str) -> str:
    """Upper-case DICOM-style code (``"ct"`` → ``"CT"``)."""
    return value.strip().upper()


def infer_modality(procedure: str | None) -> str | None:
    """Guess the modality from a procedure name (``"XR CHEST 2 VIEWS"`` → ``"DX"``)."""
    if not procedure:
        return None
    for code, pattern in _MODALITY_PATTERNS:
        if pattern.search(procedure):
            return code
    return None


def default_report_type(modality: str, procedure: str | None) -> str | None:
    """The builtin schema for an exam, or ``None`` when none applies (the report is still kept).

    Radiographs are ``cxr`` when the procedure is a chest exam (or unnamed); mammography is
    ``mammo``; CT is ``ccta`` only for coronary/cardiac procedures.
    """
    modality = normalize_modality(modality)
    if modality == "MG":
        return "mammo"
    if modality in RADIOGRAPH_MODALITIES:
        return "cxr" if procedure is None or _CHEST.search(procedure) else None
    if modality == "CT" and procedure and _CORONARY.search(procedure):
        return "ccta"
    return None
