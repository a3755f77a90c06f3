"""Strict CSV: every record with the physical line it starts on, or the reason it is unreadable.

Python's ``csv`` module, left lenient, lets one stray quote swallow the newlines and delimiters
of the rows after it: five input lines become one record and a report is labelled from another
patient's text. Here the file is parsed with ``strict=True``, every record must have as many
fields as the header, and a record that breaks either rule becomes a :class:`CsvRecord` with a
``problem`` naming its line; parsing then resumes on the *next physical line*, so the rows a
stray quote would have swallowed are read on their own. Legitimately multi-line fields (quoted,
well-formed, right field count) are kept.

Problems and column descriptions never quote cell content: a headerless file's first row is
report text, so only values that look like column names are ever shown
(:func:`extractors.io.redact.describe_columns`).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

csv.field_size_limit(sys.maxsize)  # report texts can be long; the extractors bound them


@dataclass(frozen=True)
class CsvRecord:
    """One record: ``values`` by column, or ``problem`` (why its line could not be read; the
    caller prefixes the line number). ``flags`` name bytes that were replaced in it."""

    line: int
    values: dict[str, str] | None
    problem: str | None = None
    flags: list[str] = field(default_factory=list)


class CsvHeaderError(ValueError):
    """The first line is not a usable CSV header (the message names no cell content)."""


def split_lines(text: str) -> list[str]:
    """Physical lines of ``text`` (after CRLF/CR → LF), each with its newline."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


class _Lines:
    """An iterator over ``lines`` from ``pos`` whose position survives a new csv reader."""

    def __init__(self, lines: list[str], pos: int = 0) -> None:
        self.lines, self.pos = lines, pos

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        line = self.lines[self.pos]
        self.pos += 1
        return line.replace("\x00", " ") if "\x00" in line else line


class StrictCsv:
    """The header (``columns``) and the records of one CSV text; see the module docstring."""

    def __init__(self, text: str, delimiter: str = ",", replaced_bytes: bool = False) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]  # a UTF-8 byte order mark is not part of the first column's name
        self.delimiter = delimiter
        self.replaced_bytes = replaced_bytes
        self._lines = split_lines(text)
        self._src = _Lines(self._lines)
        self.columns: list[str] = []
        if not self._lines:
            return
        reader = self._reader()
        try:
            header = next(reader, [])
        except csv.Error as exc:
            raise CsvHeaderError(f"line 1 is not a valid CSV header ({exc})") from None
        if self._src.pos != 1:
            raise CsvHeaderError(
                "the header (line 1) has a quoted field spanning several lines: "
                "the first line must name the columns"
            )
        self.columns = header

    def _reader(self) -> Iterator[list[str]]:
        return csv.reader(self._src, delimiter=self.delimiter, strict=True)

    def records(self) -> Iterator[CsvRecord]:
        """Every record after the header, in file order; blank lines are skipped."""
        width = len(self.columns)
        reader = self._reader()
        while True:
            start = self._src.pos
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = self._src.pos
                yield CsvRecord(start + 1, None, self._broken(start, end, exc))
                self._src.pos = start + 1  # resume on the next physical line
                reader = self._reader()
                continue
            end = self._src.pos
            if not row or (len(row) == 1 and not row[0].strip() and end - start == 1):
                continue
            if len(row) != width:
                span = f"lines {start + 1}-{end}" if end - start > 1 else f"line {start + 1}"
                problem = (
                    f"the record on {span} has {len(row)} fields, the header has {width} "
                    "(a stray quote or delimiter?)"
                )
                yield CsvRecord(start + 1, None, problem)
                if end - start > 1:  # a quote swallowed later lines: read them on their own
                    self._src.pos = start + 1
                    reader = self._reader()
                continue
            chunk = self._lines[start:end]
            flags = []
            if self.replaced_bytes and any("\ufffd" in line for line in chunk):
                flags.append("invalid_utf8_replaced")
            if any("\x00" in line for line in chunk):
                flags.append("nul_bytes_replaced")
            yield CsvRecord(start + 1, dict(zip(self.columns, row, strict=True)), flags=flags)

    def _broken(self, start: int, end: int, exc: csv.Error) -> str:
        reason = str(exc).rstrip(".")
        if end >= len(self._lines) and "end of data" in reason:
            return (
                "a quoted field opened on this line is never closed (a stray quote?); "
                "the line was not read as a record"
            )
        return (
            f"not valid CSV ({reason}; read as far as line {end}); "
            "the line was not read as a record"
        )
