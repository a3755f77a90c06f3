"""``cddcesm`` gold: CDD-CESM mammography rows (``breast_reports.csv``, one row per breast).

Each row becomes one report whose side is a header in the text, the way a per-breast report
reads::

    LEFT BREAST:
    FINDINGS: <dm_findings_text>
    OPINION: <dm_opinion_text>

so the mammography rules (and any LLM) get the side from the text itself. The gold keeps the
radiologist's values: the breast's BI-RADS is the highest of ``label_birads_dm`` (``3$2`` -> ``3``,
in the order of :data:`extractors.rules.mammo.BIRADS_ORDER`), density is the ACR letter or None
(``_`` / empty: not labelled). Scored as BI-RADS exact match of ``birads[side]`` and ACR density
where labelled (:mod:`extractors.evaluate.tasks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from extractors.gold.base import GoldError, GoldSet, csv_rows, csv_table, existing
from extractors.gold.normalize import normalize_birads, normalize_density, normalize_side
from extractors.io.redact import describe_columns, shown_value

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


def _row_side(row: dict[str, Any]) -> str:
    side = str(row.get("side", "")).strip().upper()
    if side not in ("L", "R"):
        raise GoldError(f"side must be L or R, got {shown_value(side)}")
    return normalize_side(side)


def cddcesm_report_text(row: dict[str, Any]) -> str:
    """The report text of one breast-level row: a side header, then FINDINGS and OPINION."""
    side = _row_side(row)
    findings = str(row.get("dm_findings_text") or "").strip()
    opinion = str(row.get("dm_opinion_text") or "").strip()
    if not findings and not opinion:
        raise GoldError(f"{side} breast: no report text")
    lines = [f"{side.upper()} BREAST:"]
    if findings:
        lines.append(f"FINDINGS: {findings}")
    if opinion:
        lines.append(f"OPINION: {opinion}")
    return "\n".join(lines)


def load_cddcesm(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``breast_reports.csv`` as ``{report_id, text, gold}`` dicts, in file order.

    ``report_id`` is ``f"{patient_id}{side}"`` (e.g. ``5L``); ``gold`` holds ``birads``,
    ``density``, ``side`` (left/right), ``findings`` and ``tags`` (the label text as given).
    """
    path = existing(path)
    table = csv_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise GoldError(
            f"{path}: missing columns {', '.join(missing)}; it has {describe_columns(table.columns)}"
        )
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line_no, row in csv_rows(path, table):
        try:
            side = _row_side(row)
            report_id = f"{row['patient_id'].strip()}{row['side'].strip().upper()}"
            if report_id in seen:
                raise GoldError(f"patient and side appear twice (first on line {seen[report_id]})")
            seen[report_id] = line_no
            out.append(
                {
                    "report_id": report_id,
                    "text": cddcesm_report_text(row),
                    "gold": {
                        "birads": normalize_birads(row["label_birads_dm"]),
                        "density": normalize_density(row["label_density_acr"]),
                        "side": side,
                        "findings": row["label_findings_dm"].strip(),
                        "tags": row["label_tags_dm"].strip(),
                    },
                }
            )
        except GoldError as exc:
            raise GoldError(f"{path}, line {line_no}: {exc}") from None
    return out


def cddcesm_reports(path: Path | str) -> Iterator[dict[str, str]]:
    """CDD-CESM breast rows as ``{report_id, text}`` (``rrief extract`` input), ids like ``5L``."""
    for row in load_cddcesm(path):
        yield {"report_id": row["report_id"], "text": row["text"]}


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


CddcesmLoader = Callable[[Path], list[dict[str, Any]]]


def load_cddcesm_gold(path: Path | str, loader: CddcesmLoader | None = None) -> GoldSet:
    """CDD-CESM ``breast_reports.csv`` → ``{report_id: {side, birads, density}}`` per breast."""
    path = existing(path)
    try:
        records = (loader or load_cddcesm)(path)
    except (KeyError, OSError) as exc:  # keys are the loader's own field names
        raise GoldError(f"cannot read CDD-CESM gold: {exc}") from None
    labels: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(records):
        try:
            rid = str(rec["report_id"])
            gold = rec["gold"]
            entry = {
                "side": normalize_side(gold.get("side")),
                "birads": normalize_birads(gold.get("birads")),
                "density": normalize_density(gold.get("density")),
            }
        except GoldError as exc:
            raise GoldError(f"{path} record {i + 1}: cannot read gold ({exc})") from None
        except (KeyError, TypeError) as exc:
            raise GoldError(
                f"{path} record {i + 1}: cannot read gold ({type(exc).__name__})"
            ) from None
        if rid in labels:
            raise GoldError(f"{path} record {i + 1}: its report id appears twice")
        labels[rid] = entry
    if not labels:
        raise GoldError(f"{path} holds no gold records")
    return GoldSet(
        kind="cddcesm",
        source=str(path),
        labels=labels,
        findings=["birads", "density"],
        note=(
            "CDD-CESM breast-level gold: BI-RADS exact match of birads[side] (several findings: "
            "the highest category) and ACR density where labelled"
        ),
    )
