"""``chestxray14`` gold: NegBio's Open-i gold standard (0/1 per ChestX-ray14 finding) as
positive-only CheXpert labels.

ChestX-ray14 mapping (``chestxray14``, per the data README): Atelectasis, Cardiomegaly,
Pneumonia, Pneumothorax, Consolidation, Edema as named; Effusion → Pleural Effusion;
Mass | Nodule → Lung Lesion; Infiltration → Lung Opacity; Pleural_Thickening | Fibrosis →
Pleural Other; normal → No Finding. Emphysema and Hernia have no CheXpert slot and are dropped;
Enlarged Cardiomediastinum, Fracture and Support Devices are not covered by this gold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extractors.gold.base import CXR_FINDINGS, GoldError, GoldSet, read_csv, row_id
from extractors.gold.positive_only import positive_only_set
from extractors.io.redact import shown_value

CHESTXRAY14_MAP: dict[str, tuple[str, ...]] = {
    "Atelectasis": ("Atelectasis",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Pneumonia": ("Pneumonia",),
    "Pneumothorax": ("Pneumothorax",),
    "Consolidation": ("Consolidation",),
    "Edema": ("Edema",),
    "Pleural Effusion": ("Effusion",),
    "Lung Lesion": ("Mass", "Nodule"),
    "Lung Opacity": ("Infiltration",),
    "Pleural Other": ("Pleural_Thickening", "Fibrosis"),
    "No Finding": ("normal",),
}
CHESTXRAY14_DROPPED = ("Emphysema", "Hernia")


def load_chestxray14(path: Path | str, id_col: str = "uid") -> GoldSet:
    """``labels_gold_chestxray14.csv`` (0/1 columns) → positive-only gold over 11 findings."""
    path = Path(path)
    sources = sorted({c for cols in CHESTXRAY14_MAP.values() for c in cols})
    rows = read_csv(path, (id_col, *sources))
    labels: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    covered = [f for f in CXR_FINDINGS if f in CHESTXRAY14_MAP]
    for lineno, row in rows:
        rid = row_id(row, id_col, path, lineno, (labels, skipped))
        values: dict[str, bool] = {}
        for col in sources:
            raw = (row[col] or "").strip()
            if raw not in ("0", "1", "0.0", "1.0"):
                raise GoldError(
                    f"{path} line {lineno}: column {col} is {shown_value(raw)}, expected 0 or 1"
                )
            values[col] = raw.startswith("1")
        labels[rid] = {f: any(values[c] for c in CHESTXRAY14_MAP[f]) for f in covered}
    return positive_only_set(labels, skipped, path, covered, "NegBio ChestX-ray14 gold")
