"""Read reports from JSONL or CSV, yielding a report or a per-line problem, in input order.

A bad line (invalid JSON, missing id or text, non-UTF-8 bytes) becomes an :class:`InputProblem`
that the caller writes as an error line; only a problem with the whole file (missing columns,
unreadable file) raises :class:`InputError`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from extractors.results import ReportInput
from extractors.text.decode import decode_report

InputFormat = Literal["auto", "jsonl", "csv"]


class InputError(ValueError):
    """The input file as a whole cannot be read (e.g. a required column is missing)."""


@dataclass(frozen=True)
class InputProblem:
    """One input record that could not become a report; it still yields an output line."""

    line: int
    report_id: str | None
    message: str


def detect_format(path: Path, fmt: InputFormat) -> Literal["jsonl", "csv"]:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise InputError(
        f"cannot tell the format of {path} from its name; pass --input-format jsonl|csv"
    )


def iter_reports(
    path: Path,
    fmt: InputFormat = "auto",
    id_col: str = "report_id",
    text_cols: Sequence[str] = ("text",),
) -> Iterator[ReportInput | InputProblem]:
    """Yield each input record as a :class:`ReportInput` or an :class:`InputProblem`."""
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    kind = detect_format(path, fmt)
    if kind == "jsonl":
        yield from _iter_jsonl(path, id_col, text_cols)
    else:
        yield from _iter_csv(
            path, id_col, text_cols, delimiter="\t" if path.suffix == ".tsv" else ","
        )


def _iter_jsonl(
    path: Path, id_col: str, text_cols: Sequence[str]
) -> Iterator[ReportInput | InputProblem]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            decoded = decode_report(raw)
            try:
                record = json.loads(decoded.text)
            except json.JSONDecodeError as exc:
                yield InputProblem(
                    lineno, None, f"input line {lineno} is not valid JSON: {exc.msg}"
                )
                continue
            if not isinstance(record, dict):
                yield InputProblem(lineno, None, f"input line {lineno} is not a JSON object")
                continue
            yield _record_to_report(record, lineno, id_col, text_cols, decoded.flags)


def _iter_csv(
    path: Path, id_col: str, text_cols: Sequence[str], delimiter: str
) -> Iterator[ReportInput | InputProblem]:
    data = path.read_bytes()
    decoded = decode_report(data)
    csv.field_size_limit(sys.maxsize)
    reader = csv.DictReader(io.StringIO(decoded.text, newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    missing = [c for c in (id_col, *text_cols) if c not in columns]
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(columns) or 'no header'}. "
            "Choose columns with --id-col and --text-col."
        )
    for lineno, row in enumerate(reader, start=2):
        flags = (
            ["invalid_utf8_replaced"]
            if decoded.flags
            and any("\ufffd" in (v or "") for v in row.values() if isinstance(v, str))
            else []
        )
        yield _record_to_report(row, lineno, id_col, text_cols, flags)


def _record_to_report(
    record: dict, lineno: int, id_col: str, text_cols: Sequence[str], flags: list[str]
) -> ReportInput | InputProblem:
    raw_id = record.get(id_col)
    if raw_id is None or str(raw_id).strip() == "":
        return InputProblem(lineno, None, f"input line {lineno} has no {id_col!r}")
    report_id = str(raw_id)
    missing = [c for c in text_cols if c not in record]
    if missing:
        return InputProblem(
            lineno, report_id, f"input line {lineno} has no {', '.join(map(repr, missing))}"
        )
    bad = [c for c in text_cols if record[c] is not None and not isinstance(record[c], str)]
    if bad:
        return InputProblem(
            lineno, report_id, f"input line {lineno}: {', '.join(bad)} must be text"
        )
    text = join_text_columns({c: record[c] or "" for c in text_cols})
    meta = {k: v for k, v in record.items() if k not in (id_col, *text_cols) and _is_scalar(v)}
    return ReportInput(report_id=report_id, text=decode_report(text).text, flags=flags, meta=meta)


def join_text_columns(columns: dict[str, str]) -> str:
    """One column is used as is; several are joined as ``NAME: text`` sections, empty ones skipped."""
    if len(columns) == 1:
        return next(iter(columns.values()))
    parts = [
        f"{name.upper()}: {text.strip()}" for name, text in columns.items() if text and text.strip()
    ]
    return "\n".join(parts)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool) or value is None
