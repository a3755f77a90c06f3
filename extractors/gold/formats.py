"""Pick and run the reader of a gold format: ``jsonl``, ``openi-mesh``, ``chestxray14``, ``cddcesm``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from extractors.gold.base import GoldError, GoldSet, existing
from extractors.gold.cddcesm import load_cddcesm_gold
from extractors.gold.chestxray14 import load_chestxray14
from extractors.gold.jsonl import load_jsonl_gold
from extractors.gold.openi import load_openi_mesh
from extractors.schemas import SchemaSpec

GOLD_FORMATS = ("jsonl", "openi-mesh", "chestxray14", "cddcesm")


def load_gold(path: Path | str, fmt: str, schema: SchemaSpec, id_col: str | None = None) -> GoldSet:
    """Load ``path`` with the reader of ``fmt`` (one of :data:`GOLD_FORMATS`)."""
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


def guess_gold_format(path: Path | str) -> str:
    """Pick a format from the file name and CSV header; raises when it cannot tell."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.suffix.lower() == ".csv":
        header = set(
            next(csv.reader(io.StringIO(existing(path).read_text("utf-8", "replace"))), [])
        )
        if "MeSH" in header:
            return "openi-mesh"
        if {"Effusion", "Infiltration", "normal"} <= header:
            return "chestxray14"
        if {"dm_opinion_text", "side"} <= header:
            return "cddcesm"
    raise GoldError(f"cannot tell the gold format of {path}; pass --gold-format")
