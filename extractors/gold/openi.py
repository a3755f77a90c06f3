"""``openi-mesh`` gold: the MeSH terms of Open-i ``reports.csv`` as positive-only CheXpert labels,
and the Open-i reports themselves as ``rrief extract`` input.

Open-i MeSH → CheXpert mapping (``openi-mesh``). A MeSH term is ``Head/qualifier/...``; the head
(case-insensitive) decides, some heads only with a qualifier, and lung-parenchyma heads are
ignored when a qualifier names a site outside the lung (heart, mediastinum, ribs, pleura, bones,
breast, abdomen, ...):

=====================================================  =================================
MeSH head [qualifier condition]                        CheXpert finding
=====================================================  =================================
normal                                                 No Finding
Cardiomegaly; Cardiac Shadow [enlarged]                Cardiomegaly
Mediastinum [enlarged or prominent]                    Enlarged Cardiomediastinum
Opacity; Infiltrate; Airspace Disease; Density [lung]  Lung Opacity
Nodule; Mass                                           Lung Lesion
Pulmonary Edema; Pulmonary Congestion                  Edema
Consolidation                                          Consolidation
Pneumonia                                              Pneumonia
Pulmonary Atelectasis; Volume Loss [lung]              Atelectasis
Pneumothorax; Hydropneumothorax                        Pneumothorax
Pleural Effusion; Hydropneumothorax;                   Pleural Effusion
Costophrenic Angle [blunted]; Pleura [blunted]
Thickening [pleura]; Cicatrix [pleura];                Pleural Other
Pleura [other qualifiers]; Pulmonary Fibrosis
Fractures, Bone                                        Fracture
Catheters, Indwelling; Tube, Inserted; Implanted       Support Devices
Medical Device; Medical Device; Stents; Surgical
Instruments; Sutures; Pacemaker, Artificial;
Defibrillators, Implantable; Heart Valve Prosthesis;
Electrodes, Implanted
=====================================================  =================================

Terms not in the table (e.g. Calcified Granuloma, Emphysema, Scoliosis) map to nothing: they
neither make a finding positive nor make the report normal. Pulmonary Fibrosis → Pleural Other
follows the ChestX-ray14 mapping (Fibrosis → Pleural Other) so both Open-i golds agree. Reports
indexed ``No Indexing`` (or with no MeSH at all) carry no gold and are *skipped, with a count*.

Caveat on No Finding (both Open-i golds): MeSH ``normal`` means *no abnormality at all*, stricter
than CheXpert's No Finding (none of the 13 findings). A report indexed only with, say, Calcified
Granuloma is No Finding for a CheXpert-style labeler but not ``normal`` here (about a quarter of
the development reports), so No Finding precision is bounded by the gold, not only the labeler.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from extractors.gold.base import (
    CXR_FINDINGS,
    GoldError,
    GoldSet,
    csv_rows,
    csv_table,
    read_csv,
    row_id,
)
from extractors.gold.positive_only import positive_only_set
from extractors.io.readers import join_text_columns
from extractors.io.redact import describe_columns

_NON_LUNG_SITES = frozenset({
    "heart", "mediastinum", "ribs", "pleura", "breast", "abdomen", "clavicle", "spine", "sternum",
    "thoracic vertebrae", "lumbar vertebrae", "cervical vertebrae", "humerus", "shoulder", "neck",
    "diaphragm", "costophrenic angle", "mitral valve", "aortic valve", "aorta", "paratracheal",
    "soft tissue",
})  # fmt: skip

_LUNG_HEADS = {"opacity", "infiltrate", "airspace disease", "nodule", "mass"}
_DIRECT: dict[str, tuple[str, ...]] = {
    "normal": ("No Finding",),
    "cardiomegaly": ("Cardiomegaly",),
    "opacity": ("Lung Opacity",),
    "infiltrate": ("Lung Opacity",),
    "airspace disease": ("Lung Opacity",),
    "nodule": ("Lung Lesion",),
    "mass": ("Lung Lesion",),
    "pulmonary edema": ("Edema",),
    "pulmonary congestion": ("Edema",),
    "consolidation": ("Consolidation",),
    "pneumonia": ("Pneumonia",),
    "pulmonary atelectasis": ("Atelectasis",),
    "pneumothorax": ("Pneumothorax",),
    "hydropneumothorax": ("Pneumothorax", "Pleural Effusion"),
    "pleural effusion": ("Pleural Effusion",),
    "pulmonary fibrosis": ("Pleural Other",),
    "fractures, bone": ("Fracture",),
    "catheters, indwelling": ("Support Devices",),
    "tube, inserted": ("Support Devices",),
    "implanted medical device": ("Support Devices",),
    "medical device": ("Support Devices",),
    "stents": ("Support Devices",),
    "surgical instruments": ("Support Devices",),
    "sutures": ("Support Devices",),
    "pacemaker, artificial": ("Support Devices",),
    "defibrillators, implantable": ("Support Devices",),
    "heart valve prosthesis": ("Support Devices",),
    "electrodes, implanted": ("Support Devices",),
}
NO_GOLD_TERMS = frozenset({"no indexing", ""})


def mesh_term_findings(term: str) -> set[str]:
    """CheXpert findings implied by one MeSH term such as ``Opacity/lung/base/left``."""
    parts = [p.strip().lower() for p in term.split("/")]
    head, quals = parts[0], set(parts[1:])
    if head in _LUNG_HEADS and quals & _NON_LUNG_SITES:
        return set()
    if head in _DIRECT:
        return set(_DIRECT[head])
    if head == "cardiac shadow" and "enlarged" in quals:
        return {"Cardiomegaly"}
    if head == "mediastinum" and quals & {"enlarged", "prominent"}:
        return {"Enlarged Cardiomediastinum"}
    if head == "density" and "lung" in quals and not (quals & _NON_LUNG_SITES):
        return {"Lung Opacity"}
    if head == "volume loss" and "lung" in quals:
        return {"Atelectasis"}
    if head == "costophrenic angle" and "blunted" in quals:
        return {"Pleural Effusion"}
    if head == "pleura":
        return {"Pleural Effusion"} if "blunted" in quals else {"Pleural Other"}
    if head in ("thickening", "cicatrix") and "pleura" in quals:
        return {"Pleural Other"}
    return set()


def load_openi_mesh(path: Path | str, id_col: str = "uid", mesh_col: str = "MeSH") -> GoldSet:
    """Open-i ``reports.csv`` → positive-only gold over all 14 CheXpert findings."""
    path = Path(path)
    rows = read_csv(path, (id_col, mesh_col))
    labels: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for lineno, row in rows:
        rid = row_id(row, id_col, path, lineno, (labels, skipped))
        terms = [t.strip() for t in (row[mesh_col] or "").split(";")]
        if all(t.lower() in NO_GOLD_TERMS for t in terms):
            skipped[rid] = f"MeSH is {row[mesh_col]!r}: no human labels"
            continue
        present: set[str] = set()
        for term in terms:
            present |= mesh_term_findings(term)
        labels[rid] = {name: name in present for name in CXR_FINDINGS}
    return positive_only_set(labels, skipped, path, list(CXR_FINDINGS), "Open-i MeSH major terms")


def openi_reports(path: Path | str) -> Iterator[dict[str, str]]:
    """Open-i ``reports.csv`` rows as ``{report_id, text}`` (findings + impression only), the
    text exactly as ``rrief extract --text-col findings --text-col impression`` builds it."""
    path = Path(path)
    table = csv_table(path)
    if "uid" not in table.columns:
        raise GoldError(f"{path} lacks column uid; it has {describe_columns(table.columns)}")
    for _, row in csv_rows(path, table):
        text = join_text_columns(
            {"findings": row.get("findings") or "", "impression": row.get("impression") or ""}
        )
        yield {"report_id": row["uid"], "text": text}
