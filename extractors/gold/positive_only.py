"""The :class:`GoldSet` of a positive-only gold (Open-i MeSH, ChestX-ray14): the human indexers
say only what is present, so these are scored as binary detection of the positive class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extractors.gold.base import GoldError, GoldSet


def positive_only_set(
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
