"""What every gold format shares: the error type, the loaded-gold container and CSV/file helpers.

Each gold format (:mod:`~extractors.gold.jsonl`, :mod:`~extractors.gold.openi`,
:mod:`~extractors.gold.chestxray14`, :mod:`~extractors.gold.cddcesm`) turns a file into a
:class:`GoldSet`; callers (``rrief evaluate``, ``rrief train``, the annotation export) catch
:class:`GoldError` and wrap it in their own message.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

GoldKind = Literal["labels", "positive_only", "cddcesm"]

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


def existing(path: Path | str) -> Path:
    """``path`` as a Path, or :class:`GoldError` when no such file exists."""
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"gold file {path} does not exist")
    return path


def read_csv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row of a CSV that has every ``required`` column."""
    text = existing(path).read_text(encoding="utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    missing = [c for c in required if c not in columns]
    if missing:
        raise GoldError(f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(columns)}")
    return [(lineno, row) for lineno, row in enumerate(reader, start=2)]


def row_id(
    row: dict[str, str],
    id_col: str,
    path: Path,
    lineno: int,
    seen: Iterable[dict[str, Any]],
) -> str:
    """The non-empty id of a CSV row, refusing one already in any of the ``seen`` mappings."""
    rid = (row.get(id_col) or "").strip()
    if not rid:
        raise GoldError(f"{path} line {lineno}: empty {id_col}")
    if any(rid in mapping for mapping in seen):
        raise GoldError(f"{path} line {lineno}: {id_col} {rid!r} appears twice")
    return rid
