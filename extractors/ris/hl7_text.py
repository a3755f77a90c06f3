"""Report text out of HL7 v2 fields: escape sequences decoded, everything else kept as sent.

python-hl7's own ``unescape`` drops the rest of a field at a backslash that starts no valid
escape (``L4\\5``, ``50\\50``) and logs the whole field at ERROR level, i.e. report text in the
logs. This module decodes exactly the escapes of HL7 v2.5 §2.7 (delimiters ``\\F\\ \\S\\ \\T\\
\\R\\ \\E\\ \\P\\``, highlighting ``\\H\\ \\N\\``, hex ``\\Xhh..\\``, formatting ``\\.br\\``,
``\\.sp n\\`` ...) and keeps an escape character that starts none of them as a plain character.
:func:`silence_python_hl7` strips the content from whatever python-hl7 still logs.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass

_HEX = re.compile(r"^X((?:[0-9A-Fa-f]{2})+)$")
_FORMAT = re.compile(r"^\.(br|sp|fi|nf|in|ti|sk|ce)([+-]?\d*)$")
_CHARSET_SWITCH = re.compile(r"^(C[0-9A-Fa-f]{4}|M[0-9A-Fa-f]{4}(?:[0-9A-Fa-f]{2})?)$")
_MAX_ESCAPE = 256  # an "escape" longer than this is a stray backslash, not a sequence


@dataclass(frozen=True)
class Delimiters:
    """The encoding characters of one message (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = "#"

    @classmethod
    def from_msh(cls, msh: str) -> Delimiters:
        """Read MSH-1/MSH-2 from the raw MSH segment (``MSH|^~\\&|...``)."""
        field = msh[3:4] or "|"
        chars = msh[4:].split(field, 1)[0]
        defaults = cls()
        picked = [
            chars[i] if len(chars) > i else default
            for i, default in enumerate(
                (defaults.component, defaults.repetition, defaults.escape, defaults.subcomponent)
            )
        ]
        return cls(
            field=field,
            component=picked[0],
            repetition=picked[1],
            escape=picked[2] if len(chars) > 2 else "",  # no escape character: nothing to decode
            subcomponent=picked[3],
            truncation=chars[4] if len(chars) > 4 else "#",
        )


def _decode_sequence(body: str, delims: Delimiters, charset: str) -> str | None:
    """The text an escape sequence stands for, or ``None`` when ``body`` is not one."""
    simple = {
        "F": delims.field,
        "S": delims.component,
        "T": delims.subcomponent,
        "R": delims.repetition,
        "E": delims.escape,
        "P": delims.truncation,
        "H": "",  # start of highlighting: plain text has none
        "N": "",  # back to normal text
    }
    if body in simple:
        return simple[body]
    if hexed := _HEX.match(body):
        return bytes.fromhex(hexed.group(1)).decode(charset, errors="replace")
    if fmt := _FORMAT.match(body):
        command, argument = fmt.groups()
        count = abs(int(argument)) if argument not in ("", "+", "-") else 1
        if command == "br":
            return "\n"
        if command == "sp":  # end the line and skip `count` lines
            return "\n" * (count + 1)
        if command == "ce":  # centre the next line: it starts a line
            return "\n"
        if command == "sk":  # skip `count` spaces
            return " " * count
        return ""  # .fi .nf .in .ti: layout only
    if _CHARSET_SWITCH.match(body) or (body.startswith("Z") and len(body) > 1):
        return ""  # ISO 2022 switches and locally defined escapes carry no text
    return None


def unescape(value: str, delims: Delimiters, charset: str = "utf-8") -> str:
    """``value`` with its HL7 escape sequences decoded; an escape character that begins no
    valid sequence (``L4\\5``, ``50\\50``) stays in the text as it is."""
    esc = delims.escape
    if not esc or esc not in value:
        return value
    out: list[str] = []
    i = 0
    while True:
        start = value.find(esc, i)
        if start < 0:
            out.append(value[i:])
            break
        out.append(value[i:start])
        end = value.find(esc, start + 1)
        decoded = None
        if 0 < end - start <= _MAX_ESCAPE:
            decoded = _decode_sequence(value[start + 1 : end], delims, charset)
        if decoded is None:
            out.append(esc)  # a plain backslash
            i = start + 1
        else:
            out.append(decoded)
            i = end + 1
    return "".join(out)


class _StripContent(logging.Filter):
    """Rewrite a python-hl7 log record into one that says only where and what level."""

    def filter(self, record: logging.LogRecord) -> bool:
        level = record.levelname
        record.msg = "python-hl7 logged a %s message (content withheld: it may quote report text)"
        record.args = (level,)
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_FILTER = _StripContent()


def silence_python_hl7() -> None:
    """Attach the content-stripping filter to every python-hl7 module logger (they are named by
    file path, so they are found through the imported modules). Idempotent."""
    import hl7  # noqa: F401  (imports its submodules)

    for name, module in list(sys.modules.items()):
        if name != "hl7" and not name.startswith("hl7."):
            continue
        logger = getattr(module, "logger", None)
        if isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
