"""What an error message may show of input data: names that look like names, short codes,
counts and lengths — never report text or identifiers.

A headerless CSV's "columns" are its first data row, a JSON key or a label value can be
anything, so each is shown only when it cannot be text or an id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z_.\-]{0,38}[0-9]{0,2}")
_CODE_LIKE = re.compile(r"[A-Za-z0-9_.$+\-]{0,8}")
_DIGIT_RUN = re.compile(r"[0-9]{4}")  # four digits in a row may be part of an MRN or accession


def looks_like_column_name(value: str) -> bool:
    """True for names such as ``report_id``, ``label_birads_dm`` or ``Pleural_Thickening``.

    Anything with spaces, digits beyond a short suffix, or punctuation may be report text or an
    identifier (a headerless file), so it is never echoed in a message.
    """
    return bool(_NAME_LIKE.fullmatch(value))


def describe_columns(columns: Sequence[str]) -> str:
    """The header for an error message: the name-like columns, and a count of the others."""
    shown = [c for c in columns if looks_like_column_name(c)]
    hidden = len(columns) - len(shown)
    if not columns:
        return "no header"
    text = ", ".join(shown)
    if hidden:
        what = (
            "field does not look like a column name"
            if hidden == 1
            else ("fields do not look like column names")
        )
        extra = f"{hidden} {what} (not shown: is the header row missing?)"
        text = f"{text} and {extra}" if text else extra
    return text


def shown_value(value: object) -> str:
    """``value`` for a message when it is a short code (``'4a'``, ``'3$2'``, ``'x'``), else
    only its length: a long or spaced value may be report text that landed in a label column."""
    text = str(value)
    if _CODE_LIKE.fullmatch(text) and not _DIGIT_RUN.search(text):
        return repr(text)
    return f"({len(text)} characters, not shown)"
