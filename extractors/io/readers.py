"""Read reports from JSONL or CSV, yielding a report or a per-line problem, in input order.

A bad line (invalid JSON or CSV, JSON nested too deeply, an id that is not a string or number,
missing text, non-UTF-8 bytes) becomes an :class:`InputProblem` that the caller writes as an
error line; only a problem with the whole file (missing columns or keys, unreadable file)
raises :class:`InputError`. Replaced bytes (invalid UTF-8, NUL, lone surrogates) are flagged on
the report, and a report id seen before is flagged ``duplicate_report_id`` and warned about.
Messages name lines, columns and keys, never report text or identifiers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from extractors.io.csvfile import CsvHeaderError, StrictCsv
from extractors.io.redact import describe_columns
from extractors.results import ReportInput
from extractors.text.decode import decode_report

log = logging.getLogger("rrief.extract")

InputFormat = Literal["auto", "jsonl", "csv"]
DUPLICATE_FLAG = "duplicate_report_id"
MAX_LOGGED_DUPLICATES = 10
# a text flag that an earlier byte-level flag already explains
_EXPLAINED = {"replacement_characters": "invalid_utf8_replaced"}
_JSON_TYPES = {dict: "an object", list: "an array", bool: "true/false"}


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
        records = _iter_jsonl(path, id_col, text_cols)
    else:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        records = _iter_csv(path, id_col, text_cols, delimiter)
    yield from _flag_duplicates(records, id_col)


Numbered = tuple[int, ReportInput | InputProblem]  # (input line, record)


def _flag_duplicates(
    records: Iterator[Numbered], id_col: str
) -> Iterator[ReportInput | InputProblem]:
    """The records; a report whose id came before gets the duplicate flag and a warning (by
    line numbers: the id itself may identify a patient)."""
    first_line: dict[str, int] = {}
    duplicates = 0
    for line, record in records:
        if isinstance(record, ReportInput):
            seen = first_line.setdefault(record.report_id, line)
            if seen != line:
                duplicates += 1
                if duplicates <= MAX_LOGGED_DUPLICATES:
                    log.warning(
                        "input line %d repeats the %s of input line %d (flagged %s)",
                        line,
                        id_col,
                        seen,
                        DUPLICATE_FLAG,
                    )
                record = record.model_copy(update={"flags": [*record.flags, DUPLICATE_FLAG]})
        yield record
    if duplicates > MAX_LOGGED_DUPLICATES:
        log.warning("%d input lines repeat an earlier %s in all", duplicates, id_col)


def _iter_jsonl(path: Path, id_col: str, text_cols: Sequence[str]) -> Iterator[Numbered]:
    """Records of a JSONL file. Problems are held back until one object has every key: a file
    in which no object has them (wrong --id-col/--text-col) is an :class:`InputError`, as for
    CSV, instead of a file of error lines."""
    wanted = (id_col, *text_cols)
    held: list[InputProblem] | None = []  # None once a line had every key
    first_keys: tuple[int, list[str]] | None = None
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            decoded = decode_report(raw)
            record = _parse_json_line(decoded.text, lineno)
            if isinstance(record, InputProblem):
                item: ReportInput | InputProblem = record
            else:
                if first_keys is None:
                    first_keys = (lineno, [str(k) for k in record])
                if held is not None and all(k in record for k in wanted):
                    yield from ((p.line, p) for p in held)
                    held = None
                item = _record_to_report(record, lineno, id_col, text_cols, decoded.flags)
            if held is None:
                yield lineno, item
            else:
                assert isinstance(item, InputProblem)  # a report has every key
                held.append(item)
    if held is None:
        return
    if first_keys is not None:
        line, keys = first_keys
        raise InputError(
            f"no line of {path} has every key of --id-col/--text-col "
            f"({', '.join(wanted)}); the first object (line {line}) has keys "
            f"{describe_columns(keys) if keys else 'none'}. "
            "Choose keys with --id-col and --text-col."
        )
    yield from ((p.line, p) for p in held)


def _parse_json_line(text: str, lineno: int) -> dict[str, Any] | InputProblem:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return InputProblem(lineno, None, f"input line {lineno} is not valid JSON: {exc.msg}")
    except RecursionError:
        return InputProblem(lineno, None, f"input line {lineno} is JSON nested too deeply to read")
    if not isinstance(record, dict):
        return InputProblem(lineno, None, f"input line {lineno} is not a JSON object")
    return record


def _iter_csv(
    path: Path, id_col: str, text_cols: Sequence[str], delimiter: str
) -> Iterator[Numbered]:
    data = path.read_bytes()
    try:
        text, replaced = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, replaced = data.decode("utf-8", errors="replace"), True
    try:
        table = StrictCsv(text, delimiter, replaced_bytes=replaced)
    except CsvHeaderError as exc:
        raise InputError(f"{path}: {exc}") from None
    missing = [c for c in (id_col, *text_cols) if c not in table.columns]
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(missing)}; it has "
            f"{describe_columns(table.columns)}. Choose columns with --id-col and --text-col."
        )
    for rec in table.records():
        if rec.values is None:
            yield rec.line, InputProblem(rec.line, None, f"input line {rec.line}: {rec.problem}")
        else:
            yield rec.line, _record_to_report(rec.values, rec.line, id_col, text_cols, rec.flags)


def _report_id(raw_id: object, lineno: int, id_col: str) -> str | InputProblem:
    """The id as text, or the problem: missing, empty, or not a string/number (never shown)."""
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        return InputProblem(lineno, None, f"input line {lineno} has no {id_col!r}")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float):
        kind = _JSON_TYPES.get(type(raw_id), type(raw_id).__name__)
        return InputProblem(
            lineno,
            None,
            f"input line {lineno}: {id_col!r} must be a string or a number, not {kind}",
        )
    text = decode_report(str(raw_id)).text
    if not text.strip():
        return InputProblem(lineno, None, f"input line {lineno} has no {id_col!r}")
    return text


def _record_to_report(
    record: dict, lineno: int, id_col: str, text_cols: Sequence[str], flags: list[str]
) -> ReportInput | InputProblem:
    report_id = _report_id(record.get(id_col), lineno, id_col)
    if isinstance(report_id, InputProblem):
        return report_id
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
    decoded = decode_report(join_text_columns({c: record[c] or "" for c in text_cols}))
    text_flags = [f for f in decoded.flags if not (f in _EXPLAINED and _EXPLAINED[f] in flags)]
    meta = {k: v for k, v in record.items() if k not in (id_col, *text_cols) and _is_scalar(v)}
    return ReportInput(
        report_id=report_id,
        text=decoded.text,
        flags=list(dict.fromkeys([*flags, *text_flags])),
        meta=meta,
    )


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
