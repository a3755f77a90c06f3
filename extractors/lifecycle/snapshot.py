"""Gold snapshots: the annotation store's final labels of one split, frozen into a hashed,
read-only JSONL file that a training run or an evaluation names by its SHA-256.

The file name carries the hash (``<schema>-<split>-<sha256[:16]>.jsonl``), so a snapshot is
never overwritten: the same labels give the same file (a retried task reuses it), new labels a
new one. The split comes from :func:`extractors.gold.annotations.split_of` (a hash of the report
key), so a report of the test split never reaches a training snapshot.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import Engine

from extractors.gold.annotations import Split, export_gold, write_gold_jsonl
from extractors.schemas import SchemaSpec

log = logging.getLogger("rrief.lifecycle")


class SnapshotError(ValueError):
    """No snapshot can be made (no final labels in the split yet)."""


class Snapshot(BaseModel):
    """One frozen gold file: where it is, its hash and how many reports it holds."""

    path: str
    sha256: str
    size: int
    split: Split
    schema_id: str


def snapshot_gold(engine: Engine, schema: SchemaSpec, split: Split, root: Path) -> Snapshot:
    """Export ``schema``'s final labels of ``split`` into ``root`` as an immutable file."""
    export = export_gold(engine, schema, split)
    if not export.records:
        raise SnapshotError(
            f"no final {schema.id} labels in the {split} split yet "
            f"({len(export.left_out)} tasks not final): annotate first (`rrief annotate`)"
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{schema.name}-{split}-{os.getpid()}.jsonl.tmp"
    digest = write_gold_jsonl(export, tmp)
    path = root / f"{schema.name}-{split}-{digest[:16]}.jsonl"
    if path.exists():
        tmp.unlink()
        if _sha256(path) != digest:  # a snapshot is immutable: never replace one silently
            raise SnapshotError(f"{path} exists with other content; it was modified by hand")
    else:
        tmp.replace(path)
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    log.info(
        "%s %s snapshot: %d reports, sha256 %s (%d tasks not final)",
        schema.id,
        split,
        len(export.records),
        digest[:16],
        len(export.left_out),
    )
    return Snapshot(
        path=str(path), sha256=digest, size=len(export.records), split=split, schema_id=schema.id
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
