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


def scrub_identifiers(text: str, known_ids: Iterable[str] = ()) -> tuple[str, int]:
    """The text with known ids and labelled MRN/accession numbers replaced by ``[ID]``, and how
    many replacements were made."""
    count = 0
    folded = text.casefold()
    for value in sorted({v.strip() for v in known_ids if v and v.strip()}, key=len, reverse=True):
        if len(value) < MIN_ID_CHARS or value.casefold() not in folded:
            continue  # the substring test spares compiling a pattern per report
        text, n = _token_pattern(value).subn(PLACEHOLDER, text)
        count += n

    def _replace(match: re.Match[str]) -> str:
        return match.group("label") + PLACEHOLDER

    text, n = _LABELLED_ID.subn(_replace, text)
    return text, count + n
