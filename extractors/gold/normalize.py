"""The one normaliser of each mammography gold value (BI-RADS, ACR density, breast side).

Public golds spell them in many ways (``"3$2"`` for several findings, ``4.0``, ``"_"`` for not
labelled, ``L``/``left``); every gold reader and the annotation export go through these.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from extractors.gold.base import GoldError
from extractors.io.redact import shown_value
from extractors.rules.mammo import BIRADS_ORDER, highest_birads

_EMPTY = ("", "_", "nan", "none")


def normalize_birads(value: Any) -> str | None:
    """BI-RADS as a string; several findings (``"3$2"``, ``["3", "2"]``) give the highest.

    ``None``, empty and ``_`` mean not labelled; an unknown category is a :class:`GoldError`.
    """
    if value is None:
        return None
    parts: Iterable[Any] = value if isinstance(value, list | tuple | set) else str(value).split("$")
    cats: list[str] = []
    for p in parts:
        text = str(p).strip().upper()
        if text.lower() in _EMPTY:
            continue
        if text.endswith(".0"):
            text = text[:-2]
        cats.append(text)
    bad = [c for c in cats if c not in BIRADS_ORDER]
    if bad:
        raise GoldError(
            f"BI-RADS value {shown_value(value)} has unknown categories {', '.join(shown_value(c) for c in bad)}; "
            f"expected {', '.join(BIRADS_ORDER)}"
        )
    return highest_birads(cats)


def birads_category(value: str | None) -> str | None:
    """Collapse 4A/4B/4C to 4 (for a category-level match)."""
    return "4" if value in ("4A", "4B", "4C") else value


def normalize_density(value: Any) -> str | None:
    """ACR density letter a-d; ``None`` when not labelled (``_``, empty)."""
    text = str(value if value is not None else "").strip().lower()
    if text in _EMPTY:
        return None
    if text not in ("a", "b", "c", "d"):
        raise GoldError(f"ACR density {shown_value(value)} is not one of A-D, '_' or empty")
    return text


def normalize_side(value: Any) -> str:
    """``left`` or ``right`` from ``L``/``R``/``left``/``right`` (any case)."""
    text = str(value or "").strip().lower()
    if text in ("l", "left"):
        return "left"
    if text in ("r", "right"):
        return "right"
    raise GoldError(f"breast side must be L or R (or left/right), got {shown_value(value)}")
