"""Remove identifiers from report text before it is stored.

Two passes: the record's own patient id and accession number wherever they stand as a whole
token (dictated reports often repeat them), then labelled MRN/accession-like numbers
(``MRN: 12345678``, ``Accession #A1234567``). Each hit becomes a fixed placeholder, so text
offsets computed later (evidence) refer to the stored, scrubbed text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PLACEHOLDER = "[ID]"
MIN_ID_CHARS = 4  # shorter ids ("7") would replace ordinary numbers in the text

_LABELLED_ID = re.compile(
    r"(?P<label>\b(?:MRN|medical\s+record\s+(?:number|no\.?|#)|patient\s+id|"
    r"accession(?:\s+(?:number|no\.?|#))?|acc\.?\s*(?:no\.?|#))\s*[:#]?\s*)"
    r"(?P<id>[A-Z]{0,3}[-]?\d[\dA-Z-]{3,})",
    re.IGNORECASE,
)


def _token_pattern(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", re.IGNORECASE)


def _replace_token(text: str, value: str) -> tuple[str, int]:
    """Replace ``value`` where it stands as a whole token (case-insensitive); count the hits.

    ASCII text takes a plain ``find`` loop: a pattern compiled per report (every id is new, so
    the ``re`` cache never helps) cost ~40% of the fetch step. Non-ASCII text keeps the regex,
    whose case folding and boundaries the loop would not reproduce.
    """
    if not (text.isascii() and value.isascii()):
        return _token_pattern(value).subn(PLACEHOLDER, text)
    lower, needle = text.lower(), value.lower()
    parts: list[str] = []
    pos = count = 0
    i = lower.find(needle)
    while i != -1:
        j = i + len(needle)
        if (i == 0 or not lower[i - 1].isalnum()) and (j == len(lower) or not lower[j].isalnum()):
            parts += [text[pos:i], PLACEHOLDER]
            pos, count = j, count + 1
            i = lower.find(needle, j)
        else:
            i = lower.find(needle, i + 1)
    parts.append(text[pos:])
    return "".join(parts), count


def scrub_identifiers(text: str, known_ids: Iterable[str] = ()) -> tuple[str, int]:
    """The text with known ids and labelled MRN/accession numbers replaced by ``[ID]``, and how
    many replacements were made."""
    count = 0
    folded = text.casefold()
    for value in sorted({v.strip() for v in known_ids if v and v.strip()}, key=len, reverse=True):
        if len(value) < MIN_ID_CHARS or value.casefold() not in folded:
            continue  # the substring test spares compiling a pattern per report
        text, n = _replace_token(text, value)
        count += n

    def _replace(match: re.Match[str]) -> str:
        return match.group("label") + PLACEHOLDER

    text, n = _LABELLED_ID.subn(_replace, text)
    return text, count + n
