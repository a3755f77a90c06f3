"""Bytes of an HL7 v2 drop file → its messages, each decoded in its own character set.

A file may hold one message or a batch (FHS/BHS wrappers), MLLP framing bytes, CR, LF or CRLF
segment ends and a UTF-8 byte order mark. Splitting happens on bytes, before decoding, so one
message in another character set (MSH-18) or with a bad byte cannot cost the others: a message
whose bytes are not valid in its character set is decoded with replacement characters and
flagged ``invalid_bytes_replaced``. A line that is not a segment (no segment id) is reported
with its line number and length; problems never quote a line.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

BOM_UTF8 = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WRAPPERS = (b"FHS", b"BHS", b"BTS", b"FTS")
_SEGMENT_ID = re.compile(rb"^[A-Z][A-Z0-9]{2}")

# HL7 table 0211 (alternate character sets) → Python codec; None = not readable from bytes.
HL7_CHARSETS: dict[str, str | None] = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR100": "iso8859-1",
    "ISO IR101": "iso8859-2",
    "ISO IR109": "iso8859-3",
    "ISO IR110": "iso8859-4",
    "ISO IR144": "iso8859-5",
    "ISO IR127": "iso8859-6",
    "ISO IR126": "iso8859-7",
    "ISO IR138": "iso8859-8",
    "ISO IR148": "iso8859-9",
    "ISO IR192": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-8",  # deprecated name; senders that use it send UTF-8
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "ISO IR87": "iso2022_jp",
    "UNICODE UTF-16": None,
    "UNICODE UTF-32": None,
}


@dataclass(frozen=True)
class RawMessage:
    """One message of a file: decoded text (segments joined by CR) and how it was read."""

    number: int
    line: int  # file line of its MSH segment
    text: str
    charset: str
    flags: tuple[str, ...] = ()
    stray_lines: tuple[tuple[int, int], ...] = ()  # (file line, length in bytes)
    problem: str | None = None  # why the message cannot be read at all


@dataclass
class SplitFile:
    """The messages of a file and the problems outside any message (line, reason)."""

    messages: list[RawMessage] = field(default_factory=list)
    problems: list[tuple[int | None, str]] = field(default_factory=list)


def _charset(msh: bytes) -> str:
    """MSH-18 (first repetition), upper-cased; empty when absent."""
    separator = msh[3:4] or b"|"
    parts = msh.split(separator)
    if len(parts) <= 17:
        return ""
    repetition = parts[1][1:2] or b"~"
    value = parts[17].split(repetition)[0].strip()
    return value.decode("ascii", errors="replace").upper()


def codec_for(charset: str, default_encoding: str) -> tuple[str | None, tuple[str, ...]]:
    """The codec for an MSH-18 value (default when empty), and a flag when it is unknown."""
    if not charset:
        return default_encoding, ()
    if charset in HL7_CHARSETS:
        return HL7_CHARSETS[charset], ()
    try:  # not a table 0211 name, but one Python knows (UTF-8, WINDOWS-1252, LATIN1 ...)
        return codecs.lookup(charset).name, ()
    except LookupError:
        return default_encoding, ("charset_unknown",)


def _decode(
    number: int, first_line: int, segments: list[bytes], strays: list[tuple[int, int]], default: str
) -> RawMessage:
    msh = segments[0]
    charset = _charset(msh)
    codec, flags = codec_for(charset, default)
    if codec is None:
        return RawMessage(
            number,
            first_line,
            "",
            charset,
            problem=f"MSH-18 character set {charset} cannot be read from bytes; send UTF-8",
        )
    data = b"\r".join(segments)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace")
        flags = (*flags, "invalid_bytes_replaced")
    return RawMessage(number, first_line, text, codec, flags, tuple(strays))


def split_file(data: bytes, default_encoding: str = "utf-8") -> SplitFile:
    """Split a drop file into decoded messages (see the module docstring)."""
    out = SplitFile()
    if data.startswith(_UTF16_BOMS):
        out.problems.append((None, "the file is UTF-16 (byte order mark); HL7 files must be bytes"))
        return out
    data = data.replace(b"\x0b", b"").replace(b"\x1c", b"")
    lines = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    current: list[bytes] | None = None
    leading: list[tuple[int, int]] = []
    start_line, strays = 0, []
    separator = b"|"
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line.startswith(BOM_UTF8):
            line = line[len(BOM_UTF8) :].lstrip()
        if not line or line[:3] in _WRAPPERS:
            continue
        if line.startswith(b"MSH"):
            if current is not None:
                out.messages.append(
                    _decode(len(out.messages) + 1, start_line, current, strays, default_encoding)
                )
            current, start_line, strays = [line], number, []
            separator = line[3:4] or b"|"
            continue
        if current is None:
            leading.append((number, len(line)))
            continue
        is_segment = _SEGMENT_ID.match(line) and line[3:4] in (separator, b"")
        if is_segment:
            current.append(line)
        else:
            strays.append((number, len(line)))
    if current is not None:
        out.messages.append(
            _decode(len(out.messages) + 1, start_line, current, strays, default_encoding)
        )
    if leading:
        first, length = leading[0]
        out.problems.append(
            (
                first,
                f"{len(leading)} line(s) before the first MSH segment belong to no message "
                f"(first: line {first}, {length} bytes)",
            )
        )
    return out
