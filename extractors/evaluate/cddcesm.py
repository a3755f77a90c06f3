"""Gold adapter for CDD-CESM mammography rows (``breast_reports.csv``, one row per breast).

Each row becomes one report whose side is a header in the text, the way a per-breast report
reads::

    LEFT BREAST:
    FINDINGS: <dm_findings_text>
    OPINION: <dm_opinion_text>

so the mammography rules (and any LLM) get the side from the text itself. The gold labels keep
the radiologist's values: the breast's BI-RADS is the highest of ``label_birads_dm`` (``3$2`` ->
``3``, in the order of :data:`extractors.rules.mammo.BIRADS_ORDER`), density is the ACR letter
or None (``_`` / empty: not labelled).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from extractors.rules.mammo import BIRADS_ORDER, highest_birads

REQUIRED_COLUMNS = (
    "patient_id",
    "side",
    "dm_findings_text",
    "dm_opinion_text",
    "label_density_acr",
    "label_birads_dm",
    "label_findings_dm",
    "label_tags_dm",
)
_SIDE_NAMES = {"L": "left", "R": "right"}


class CddCesmError(ValueError):
    """A CDD-CESM file or row cannot be turned into a report with gold labels."""


def _side(row: dict[str, Any]) -> str:
    side = str(row.get("side", "")).strip().upper()
    if side not in _SIDE_NAMES:
        raise CddCesmError(f"patient {row.get('patient_id')!r}: side must be L or R, got {side!r}")
    return _SIDE_NAMES[side]


def cddcesm_report_text(row: dict[str, Any]) -> str:
    """The report text of one breast-level row: a side header, then FINDINGS and OPINION."""
    side = _side(row)
    findings = str(row.get("dm_findings_text") or "").strip()
    opinion = str(row.get("dm_opinion_text") or "").strip()
    if not findings and not opinion:
        raise CddCesmError(f"patient {row.get('patient_id')!r} {side}: no report text")
    lines = [f"{side.upper()} BREAST:"]
    if findings:
        lines.append(f"FINDINGS: {findings}")
    if opinion:
        lines.append(f"OPINION: {opinion}")
    return "\n".join(lines)


def gold_birads(label: str) -> str | None:
    """Highest category of a ``$``-joined BI-RADS label (``"4$2"`` -> ``"4"``); None if empty."""
    parts = [p.strip().upper() for p in str(label).split("$") if p.strip()]
    if not parts:
        return None
    bad = [p for p in parts if p not in BIRADS_ORDER]
    if bad:
        raise CddCesmError(f"BI-RADS label {label!r} has unknown categories {bad}")
    return highest_birads(parts)


def gold_density(label: str) -> str | None:
    """ACR density letter a-d, None when not labelled (``_`` or empty)."""
    value = str(label or "").strip().lower()
    if value in ("", "_"):
        return None
    if value not in ("a", "b", "c", "d"):
        raise CddCesmError(f"density label {label!r} is not one of A-D, '_' or empty")
    return value


def load_cddcesm(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``breast_reports.csv`` as ``{report_id, text, gold}`` dicts, in file order.

    ``report_id`` is ``f"{patient_id}{side}"`` (e.g. ``5L``); ``gold`` holds ``birads``,
    ``density``, ``side`` (left/right), ``findings`` and ``tags`` (the label text as given).
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CddCesmError(f"{path}: missing columns {', '.join(missing)}")
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for line_no, row in enumerate(reader, start=2):
            try:
                side = _side(row)
                report_id = f"{row['patient_id'].strip()}{row['side'].strip().upper()}"
                if report_id in seen:
                    raise CddCesmError(f"duplicate report id {report_id}")
                seen.add(report_id)
                out.append(
                    {
                        "report_id": report_id,
                        "text": cddcesm_report_text(row),
                        "gold": {
                            "birads": gold_birads(row["label_birads_dm"]),
                            "density": gold_density(row["label_density_acr"]),
                            "side": side,
                            "findings": row["label_findings_dm"].strip(),
                            "tags": row["label_tags_dm"].strip(),
                        },
                    }
                )
            except CddCesmError as exc:
                raise CddCesmError(f"{path}, line {line_no}: {exc}") from None
    return out


_FINDING_PATTERNS: dict[str, str] = {
    "mass": r"\bmass",
    "calcifications": r"calcif|calcific",
    "asymmetry": r"asymmetr",
    "architectural_distortion": r"distortion",
    "lymph_nodes": r"\bimlns?\b|lymph",
    "skin_nipple_changes": r"skin\s+thickening|nipple\s+retraction",
    "post_surgical_change": r"postoperative|surgical",
}


def gold_findings(findings: str, tags: str) -> dict[str, str | None]:
    """Finding fields the CDD-CESM labels speak to: ``present``, ``absent`` (a Normal row) or
    None (the labels name only the main findings, so an unnamed finding is unknown)."""
    text = f"{findings} {tags}".lower()
    normal = findings.strip().lower() == "normal"
    out: dict[str, str | None] = {}
    for field, pattern in _FINDING_PATTERNS.items():
        if re.search(pattern, text):
            out[field] = "present"
        else:
            out[field] = "absent" if normal else None
    return out
