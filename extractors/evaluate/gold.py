"""Gold-standard adapters: turn each public label format into ``{report_id: labels-like dict}``.

Three kinds of gold come out, and each is scored differently (see :mod:`extractors.evaluate.tasks`):

``labels``
    Full labels in the schema's own format (``jsonl``: one line per report with ``report_id``,
    ``text`` and ``labels`` — the file ``rrief train`` reads). Every enum field (or ``field.key``
    of a per-key field) is scored per class. For four-state fields the CheXpert codes of public
    files (``"1.0"`` positive, ``"0.0"`` negative, ``"-1.0"`` uncertain, ``""`` not mentioned)
    are accepted too.
``positive_only``
    Open-i MeSH terms (``openi-mesh``) or the NegBio ChestX-ray14 gold (``chestxray14``): the
    human indexers only say what is *present*. Values are ``True`` (present) / ``False`` (not
    indexed as present) for the findings the gold *covers*; there is no negative or uncertain
    class, so these are scored as binary positive-class detection over the covered findings.
``cddcesm``
    CDD-CESM breast-level rows: ``{"side", "birads", "density"}`` per report (breast), from
    ``load_cddcesm`` in :mod:`extractors.evaluate.cddcesm`.

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

ChestX-ray14 mapping (``chestxray14``, per the data README): Atelectasis, Cardiomegaly,
Pneumonia, Pneumothorax, Consolidation, Edema as named; Effusion → Pleural Effusion;
Mass | Nodule → Lung Lesion; Infiltration → Lung Opacity; Pleural_Thickening | Fibrosis →
Pleural Other; normal → No Finding. Emphysema and Hernia have no CheXpert slot and are dropped;
Enlarged Cardiomediastinum, Fracture and Support Devices are not covered by this gold.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from extractors.rules.mammo import BIRADS_ORDER, highest_birads
from extractors.schemas import LabelValidationError, SchemaSpec

GoldKind = Literal["labels", "positive_only", "cddcesm"]
GOLD_FORMATS = ("jsonl", "openi-mesh", "chestxray14", "cddcesm")

CXR_FINDINGS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
FOUR_STATES = ("positive", "negative", "uncertain", "not_mentioned")
CHEXPERT_CODES = {
    "1.0": "positive", "1": "positive", "0.0": "negative", "0": "negative",
    "-1.0": "uncertain", "-1": "uncertain", "": "not_mentioned",
}  # fmt: skip


class GoldError(ValueError):
    """A gold file cannot be read or holds a record that cannot be interpreted."""


@dataclass
class GoldSet:
    """Gold labels keyed by report id, in file order, with what was skipped and why."""

    kind: GoldKind
    source: str
    labels: dict[str, dict[str, Any]]
    findings: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def __len__(self) -> int:
        return len(self.labels)


# ---------------------------------------------------------------------------------------------
# jsonl: full labels in the schema's format
# ---------------------------------------------------------------------------------------------
def iter_gold_jsonl(
    path: Path, id_key: str = "report_id"
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(report id, "PATH line N", record)`` for each line of a gold JSONL file.

    Shared by evaluation and ``rrief train`` (the same file format): invalid JSON, a line that is
    not an object, a missing id or a repeated id raise :class:`GoldError` naming the line.
    """
    path = _existing(path)
    seen: set[str] = set()
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GoldError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise GoldError(f"{where}: not a JSON object")
            rid = record.get(id_key)
            if rid is None or str(rid).strip() == "":
                raise GoldError(f"{where}: no {id_key!r}")
            rid = str(rid)
            if rid in seen:
                raise GoldError(f"{where}: report id {rid!r} appears twice")
            seen.add(rid)
            yield rid, where, record


def load_jsonl_gold(path: Path, schema: SchemaSpec, id_key: str = "report_id") -> GoldSet:
    """Read ``{"report_id", "text", "labels"}`` lines; labels must validate against ``schema``."""
    labels: dict[str, dict[str, Any]] = {}
    for rid, where, record in iter_gold_jsonl(path, id_key):
        raw = record.get("labels")
        if not isinstance(raw, dict):
            raise GoldError(f"{where}: 'labels' must be an object")
        try:
            labels[rid] = schema.validate_labels(_from_chexpert_codes(raw, schema))
        except LabelValidationError as exc:
            raise GoldError(f"{where} (report {rid!r}): {exc}") from None
    if not labels:
        raise GoldError(f"{path} holds no gold records")
    return GoldSet(
        kind="labels",
        source=str(path),
        labels=labels,
        findings=list(schema.field_names),
        note=f"full {schema.id} labels: every class scored, not_mentioned/null as the blank class",
    )


def _from_chexpert_codes(raw: dict[str, Any], schema: SchemaSpec) -> dict[str, Any]:
    """Map CheXpert numeric codes to state names on fields whose values are the four states."""
    out = dict(raw)
    for f in schema.fields:
        if tuple(schema.allowed_values(f) or ()) != FOUR_STATES or schema.keys_for(f):
            continue
        value = out.get(f.name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{float(value):.1f}"
        if isinstance(value, str) and value.strip() in CHEXPERT_CODES:
            out[f.name] = CHEXPERT_CODES[value.strip()]
        elif value is None and f.name in out:
            out[f.name] = "not_mentioned"
    return out


# ---------------------------------------------------------------------------------------------
# openi-mesh: Open-i reports.csv MeSH column → positive-only CheXpert labels
# ---------------------------------------------------------------------------------------------
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


def load_openi_mesh(path: Path, id_col: str = "uid", mesh_col: str = "MeSH") -> GoldSet:
    """Open-i ``reports.csv`` → positive-only gold over all 14 CheXpert findings."""
    rows = _read_csv(path, (id_col, mesh_col))
    labels: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for lineno, row in rows:
        rid = _row_id(row, id_col, path, lineno, labels, skipped)
        terms = [t.strip() for t in (row[mesh_col] or "").split(";")]
        if all(t.lower() in NO_GOLD_TERMS for t in terms):
            skipped[rid] = f"MeSH is {row[mesh_col]!r}: no human labels"
            continue
        present: set[str] = set()
        for term in terms:
            present |= mesh_term_findings(term)
        labels[rid] = {name: name in present for name in CXR_FINDINGS}
    return _positive_only(labels, skipped, path, list(CXR_FINDINGS), "Open-i MeSH major terms")


# ---------------------------------------------------------------------------------------------
# chestxray14: NegBio's Open-i gold with the 14 ChestX-ray14 names
# ---------------------------------------------------------------------------------------------
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


def load_chestxray14(path: Path, id_col: str = "uid") -> GoldSet:
    """``labels_gold_chestxray14.csv`` (0/1 columns) → positive-only gold over 11 findings."""
    sources = sorted({c for cols in CHESTXRAY14_MAP.values() for c in cols})
    rows = _read_csv(path, (id_col, *sources))
    labels: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    covered = [f for f in CXR_FINDINGS if f in CHESTXRAY14_MAP]
    for lineno, row in rows:
        rid = _row_id(row, id_col, path, lineno, labels, skipped)
        values: dict[str, bool] = {}
        for col in sources:
            raw = (row[col] or "").strip()
            if raw not in ("0", "1", "0.0", "1.0"):
                raise GoldError(f"{path} line {lineno}: column {col} is {raw!r}, expected 0 or 1")
            values[col] = raw.startswith("1")
        labels[rid] = {f: any(values[c] for c in CHESTXRAY14_MAP[f]) for f in covered}
    return _positive_only(labels, skipped, path, covered, "NegBio ChestX-ray14 gold")


def _positive_only(
    labels: dict[str, dict[str, Any]],
    skipped: dict[str, str],
    path: Path,
    covered: list[str],
    what: str,
) -> GoldSet:
    if not labels:
        raise GoldError(f"{path} holds no usable gold records")
    return GoldSet(
        kind="positive_only",
        source=str(path),
        labels=labels,
        findings=covered,
        skipped=skipped,
        note=(
            f"{what}: positive-only human labels (no negative or uncertain class); scored as "
            f"binary detection of the positive class over the {len(covered)} findings it covers. "
            "No Finding = MeSH 'normal' (no abnormality at all), stricter than CheXpert's"
        ),
    )


# ---------------------------------------------------------------------------------------------
# cddcesm: breast-level mammography gold
# ---------------------------------------------------------------------------------------------
def normalize_birads(value: Any) -> str | None:
    """BI-RADS as a string; several findings (``"3$2"``, ``["3", "2"]``) give the highest."""
    if value is None:
        return None
    parts: Iterable[Any] = value if isinstance(value, list | tuple | set) else str(value).split("$")
    cats = []
    for p in parts:
        text = str(p).strip().upper()
        if text in ("", "_", "NAN", "NONE"):
            continue
        if text.endswith(".0"):
            text = text[:-2]
        if text not in BIRADS_ORDER:
            raise GoldError(f"BI-RADS value {value!r} is not one of {', '.join(BIRADS_ORDER)}")
        cats.append(text)
    return highest_birads(cats)


def birads_category(value: str | None) -> str | None:
    """Collapse 4A/4B/4C to 4 (for a category-level match)."""
    return "4" if value in ("4A", "4B", "4C") else value


def normalize_side(value: Any) -> str:
    text = str(value or "").strip().lower()
    if text in ("l", "left"):
        return "left"
    if text in ("r", "right"):
        return "right"
    raise GoldError(f"breast side {value!r} is neither left nor right")


def normalize_density(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    if text in ("", "_", "nan", "none"):
        return None
    if text not in ("a", "b", "c", "d"):
        raise GoldError(f"ACR density {value!r} is not one of A-D")
    return text


CddcesmLoader = Callable[[Path], list[dict[str, Any]]]


def load_cddcesm_gold(path: Path, loader: CddcesmLoader | None = None) -> GoldSet:
    """CDD-CESM ``breast_reports.csv`` → ``{report_id: {side, birads, density}}`` per breast."""
    path = _existing(path)
    if loader is None:
        try:
            from extractors.evaluate.cddcesm import load_cddcesm as loader  # type: ignore[no-redef]
        except ImportError as exc:
            raise GoldError(
                f"the CDD-CESM reader extractors.evaluate.cddcesm is not available ({exc})"
            ) from None
    try:
        records = loader(path)
    except (ValueError, KeyError, OSError) as exc:
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
        except (KeyError, TypeError, GoldError) as exc:
            raise GoldError(f"{path} record {i + 1}: cannot read gold ({exc})") from None
        if rid in labels:
            raise GoldError(f"{path} record {i + 1}: report id {rid!r} appears twice")
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


# ---------------------------------------------------------------------------------------------
# dispatch and helpers
# ---------------------------------------------------------------------------------------------
def load_gold(path: Path, fmt: str, schema: SchemaSpec, id_col: str | None = None) -> GoldSet:
    """Load ``path`` with the adapter ``fmt`` (one of :data:`GOLD_FORMATS`)."""
    path = Path(path)
    if fmt == "jsonl":
        return load_jsonl_gold(path, schema, id_col or "report_id")
    if fmt == "openi-mesh":
        return load_openi_mesh(path, id_col or "uid")
    if fmt == "chestxray14":
        return load_chestxray14(path, id_col or "uid")
    if fmt == "cddcesm":
        return load_cddcesm_gold(path)
    raise GoldError(f"unknown gold format {fmt!r}; use one of {', '.join(GOLD_FORMATS)}")


def guess_gold_format(path: Path) -> str:
    """Pick an adapter from the file name and CSV header; raises when it cannot tell."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.suffix.lower() == ".csv":
        header = set(
            next(csv.reader(io.StringIO(_existing(path).read_text("utf-8", "replace"))), [])
        )
        if "MeSH" in header:
            return "openi-mesh"
        if {"Effusion", "Infiltration", "normal"} <= header:
            return "chestxray14"
        if {"dm_opinion_text", "side"} <= header:
            return "cddcesm"
    raise GoldError(f"cannot tell the gold format of {path}; pass --gold-format")


def _existing(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"gold file {path} does not exist")
    return path


def _read_csv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    text = _existing(path).read_text(encoding="utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    missing = [c for c in required if c not in columns]
    if missing:
        raise GoldError(f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(columns)}")
    return [(lineno, row) for lineno, row in enumerate(reader, start=2)]


def _row_id(
    row: dict[str, str],
    id_col: str,
    path: Path,
    lineno: int,
    labels: dict[str, Any],
    skipped: dict[str, str],
) -> str:
    rid = (row.get(id_col) or "").strip()
    if not rid:
        raise GoldError(f"{path} line {lineno}: empty {id_col}")
    if rid in labels or rid in skipped:
        raise GoldError(f"{path} line {lineno}: {id_col} {rid!r} appears twice")
    return rid
