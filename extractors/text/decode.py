"""Turn raw report bytes or strings into text the extractors can trust.

Offsets in evidence always refer to the *normalized* text returned here (CRLF → LF), which is
the text the warehouse stores; undecodable bytes are replaced, never dropped, and flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class DecodedText:
    """Normalized report text plus the problems met while decoding it."""

    text: str
    flags: list[str] = field(default_factory=list)


def decode_report(raw: str | bytes) -> DecodedText:
    """Decode bytes as UTF-8 (replacing bad bytes), normalize line endings, drop NUL characters.

    Strings may hold lone surrogates (a JSON ``"\\ud800"`` escape): they cannot be written as
    UTF-8, so they are replaced with U+FFFD and flagged ``invalid_unicode_replaced``.
    """
    flags: list[str] = []
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            flags.append("invalid_utf8_replaced")
    else:
        text = raw
        if "\ufffd" in text:
            flags.append("replacement_characters")
        if _SURROGATE.search(text):
            text = _SURROGATE.sub("\ufffd", text)
            flags.append("invalid_unicode_replaced")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", " ")
        flags.append("nul_bytes_replaced")
    return DecodedText(text=text, flags=flags)
