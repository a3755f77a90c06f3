"""What every gold format shares: the error type, the loaded-gold container and CSV/file helpers.

Each gold format (:mod:`~extractors.gold.jsonl`, :mod:`~extractors.gold.openi`,
:mod:`~extractors.gold.chestxray14`, :mod:`~extractors.gold.cddcesm`) turns a file into a
:class:`GoldSet`; callers (``rrief evaluate``, ``rrief train``, the annotation export) catch
:class:`GoldError` and wrap it in their own message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from extractors.io.csvfile import CsvHeaderError, StrictCsv
from extractors.io.redact import describe_columns

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


def csv_table(path: Path) -> StrictCsv:
    """A gold CSV read strictly (:mod:`extractors.io.csvfile`); a bad header is a GoldError."""
    text = existing(path).read_text(encoding="utf-8", errors="replace")
    try:
        return StrictCsv(text)
    except CsvHeaderError as exc:
        raise GoldError(f"{path}: {exc}") from None


def csv_rows(path: Path, table: StrictCsv) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` per record; a malformed record (a stray quote, a wrong number of
    fields) is a :class:`GoldError` naming its line, never a merged or dropped row."""
    for rec in table.records():
        if rec.values is None:
            raise GoldError(f"{path} line {rec.line}: {rec.problem}")
        yield rec.line, rec.values


def read_csv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row of a CSV that has every ``required`` column."""
    table = csv_table(path)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise GoldError(
            f"{path} lacks column(s) {', '.join(missing)}; it has {describe_columns(table.columns)}"
        )
    return list(csv_rows(path, table))


def row_id(
    row: dict[str, str],
    id_col: str,
    path: Path,
    lineno: int,
    seen: Iterable[dict[str, Any]],
) -> str:
    """The non-empty id of a CSV row, refusing one already in any of the ``seen`` mappings
    (the message names the line, not the id: ids may identify patients)."""
    rid = (row.get(id_col) or "").strip()
    if not rid:
        raise GoldError(f"{path} line {lineno}: empty {id_col}")
    if any(rid in mapping for mapping in seen):
        raise GoldError(
            f"{path} line {lineno}: its {id_col} appears twice (on an earlier line too)"
        )
    return rid
