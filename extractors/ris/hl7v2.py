"""HL7 v2 connector: ORU^R01 result messages from a drop folder, parsed with python-hl7.

A file holds one message or a batch; :mod:`extractors.ris.hl7_files` splits it on bytes and
decodes each message in its own character set (MSH-18). A message is read as its groups
(PATIENT_RESULT → ORDER_OBSERVATION → OBSERVATION): each OBR is one report of the PID before it.
Its text is the TX/FT/ST OBX segments that follow it — repetitions and segments one line each,
an empty OBX a blank line (paragraphs survive), escapes decoded by :mod:`extractors.ris.hl7_text`,
OBX-11 ``D``/``W`` results and comment OBX (OBX-3 code, e.g. ``&TCM``) left out. Fields used:

- patient id: PID-3 (the repetition typed ``MR``, else the first), component 1
- accession number: OBR-3.1 filler order number (else OBR-18, else OBR-2.1)
- procedure: OBR-4.2 (else OBR-4.1), exam code OBR-4.1; modality: the site exam mapping, else
  OBR-24 when it is a DICOM modality (or a table 0074 section like ``NMR``), else the procedure
- exam time: OBR-7 (optional; unreadable → flagged, not refused)
- report time (windowed, half-open): OBR-22, else OBX-14, else MSH-7 — ``time_source`` says which
- status: OBR-25, else the OBX-11 of the text segments, in the configured vocabulary

``ORU`` without a trigger event (v2.3 senders) counts as ORU^R01. A message that cannot be used
becomes a ``RISRecordError`` naming the file, message, segment, field and at most a length;
the rest of the file goes on. Errors found before a report time is known are placed in the
window of the file's modification time, so each error is reported once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import hl7

from extractors.ris.base import (
    RecordProblem,
    ReportRecord,
    ResultStatus,
    RISRecordError,
    check_window,
    make_record,
)
from extractors.ris.hl7_files import RawMessage, split_file
from extractors.ris.hl7_text import Delimiters, silence_python_hl7, unescape
from extractors.ris.mapping import ExamMapper
from extractors.ris.status import StatusVocabulary, least_final, parse_codes
from extractors.ris.times import parse_hl7_dtm

log = logging.getLogger("rrief.ris.hl7")
silence_python_hl7()

TEXT_VALUE_TYPES = frozenset({"TX", "FT", "ST"})
EXCLUDED_OBX_STATUSES = frozenset({"D", "W"})
DEFAULT_EXCLUDED_OBX_CODES = ("TCM",)
DICOM_MODALITIES = frozenset(
    {"CR", "DX", "MG", "CT", "MR", "US", "NM", "PT", "XA", "RF", "OT", "IO", "PX"}
)
# HL7 table 0074 (diagnostic service section) codes that name a modality.
SECTION_MODALITIES = {"NMR": "MR", "NMS": "NM", "RX": "DX", "VUS": "US", "OUS": "US", "CUS": "US"}


class Hl7Problem(RecordProblem):
    """A message field that cannot be used (names the field, never its value)."""


@dataclass
class _Order:
    """One ORDER_OBSERVATION group: its OBR, the OBX after it, and the PID it belongs to."""

    pid: Any | None
    obr: Any
    obxs: list[Any] = field(default_factory=list)


def _field(segment: Any, number: int) -> Any:
    """Field ``number`` of a parsed segment, or ``None`` when absent."""
    return segment[number] if len(segment) > number else None


def _component(segment: Any, number: int, component: int = 1, repetition: int = 1) -> str:
    try:
        value = segment.extract_field(None, number, repetition, component, 1)
    except (IndexError, KeyError):
        return ""
    return str(value or "").strip()


def _patient_id(pid: Any) -> str:
    field_ = _field(pid, 3)
    repetitions = list(field_) if field_ is not None else []
    best = ""
    for index in range(1, len(repetitions) + 1):
        value = _component(pid, 3, 1, index)
        kind = _component(pid, 3, 5, index)
        if value and kind.upper() == "MR":
            return value
        best = best or value
    if not best:
        raise Hl7Problem("PID-3 (patient identifier) is empty")
    return best


def _groups(message: hl7.Message) -> tuple[list[_Order], list[int]]:
    """The message's ORDER_OBSERVATION groups, each with the PID of its PATIENT_RESULT group,
    and the segment numbers of OBX segments that precede every OBR (they belong to nothing)."""
    orders: list[_Order] = []
    orphans: list[int] = []
    pid: Any | None = None
    current: _Order | None = None
    for number, segment in enumerate(message, start=1):
        name = str(segment[0])
        if name == "PID":  # a new PATIENT_RESULT group: the OBR after it are this patient's
            pid, current = segment, None
        elif name == "OBR":
            current = _Order(pid, segment)
            orders.append(current)
        elif name == "OBX":
            if current is None:
                orphans.append(number)
            else:
                current.obxs.append(segment)
    return orders, orphans


class Hl7FolderConnector:
    """ORU^R01 reports from a drop folder (``RISConnector``)."""

    def __init__(
        self,
        folder: Path | str,
        *,
        pattern: str = "*.hl7",
        source: str = "hl7",
        encoding: str = "utf-8",
        naive_timezone: tzinfo = UTC,
        statuses: StatusVocabulary | None = None,
        exams: ExamMapper | None = None,
        exclude_obx_codes: Iterable[str] | str = DEFAULT_EXCLUDED_OBX_CODES,
    ) -> None:
        """``encoding``: the character set of messages whose MSH-18 is empty.
        ``exclude_obx_codes``: OBX-3 codes (component 1 or its last subcomponent, e.g. the
        ``TCM`` of ``71020&TCM``) whose text is not part of the report."""
        self.folder = Path(folder)
        self.pattern = pattern
        self.source = source
        self.encoding = encoding
        self.naive_timezone = naive_timezone
        self.statuses = statuses or StatusVocabulary()
        self.exams = exams or ExamMapper()
        self.exclude_obx_codes = parse_codes(exclude_obx_codes)

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Every report of every file whose report time falls in ``[start, end)``, in file
        order; file-level problems in the window of the file's modification time."""
        check_window(start, end)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"HL7 drop folder {self.folder} does not exist")
        counts: Counter[str] = Counter()
        for path in sorted(p for p in self.folder.glob(self.pattern) if p.is_file()):
            mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            in_window = start <= mtime < end
            try:
                data = path.read_bytes()
            except OSError as exc:
                if in_window:
                    counts["errors"] += 1
                    yield self._error(path.name, f"cannot be read ({type(exc).__name__})")
                continue
            split = split_file(data, self.encoding)
            counts["files"] += 1
            if not split.messages:
                if in_window:
                    reasons = [r for line, r in split.problems if line is None]
                    counts["errors"] += 1
                    yield self._error(path.name, reasons[0] if reasons else _NO_MSH)
                continue
            for line, reason in split.problems:
                if in_window:
                    counts["errors"] += 1
                    yield self._error(f"{path.name} line {line}", reason)
            for raw in split.messages:
                counts["messages"] += 1
                for item in self._message(path.name, raw, mtime, start, end, counts):
                    counts["errors" if isinstance(item, RISRecordError) else "reports"] += 1
                    yield item
        log.info(
            "%s: %d files, %d messages -> %d reports, %d errors, %d ignored by the exam mapping",
            self.source,
            counts["files"],
            counts["messages"],
            counts["reports"],
            counts["errors"],
            counts["ignored"],
        )

    def _error(self, locator: str, reason: str) -> RISRecordError:
        return RISRecordError(source=self.source, locator=locator, reason=reason)

    def _message(
        self,
        file_name: str,
        raw: RawMessage,
        mtime: datetime,
        start: datetime,
        end: datetime,
        counts: Counter[str],
    ) -> Iterator[ReportRecord | RISRecordError]:
        """The reports (and errors) of one message that belong to ``[start, end)``."""
        where = f"{file_name} message {raw.number}"
        file_window = start <= mtime < end
        if raw.problem is not None:
            if file_window:
                yield self._error(where, raw.problem)
            return
        if raw.stray_lines:
            line, length = raw.stray_lines[0]
            more = len(raw.stray_lines) - 1
            if file_window:
                yield self._error(
                    f"{where} line {line}",
                    f"line {line} ({length} bytes) is not an HL7 segment, so message "
                    f"{raw.number} is not loaded (a line break inside a field?)"
                    + (f"; {more} more such line(s)" if more else ""),
                )
            return
        if "charset_unknown" in raw.flags:
            log.warning(
                "%s: MSH-18 names no known character set; read as %s (flag charset_unknown)",
                where,
                raw.charset,
            )
        if "invalid_bytes_replaced" in raw.flags:
            log.warning(
                "%s: bytes that are not %s were replaced (flag invalid_bytes_replaced)",
                where,
                raw.charset,
            )
        try:
            message = hl7.parse(raw.text)
            msh = message.segment("MSH")
            message_type, trigger = _component(msh, 9, 1), _component(msh, 9, 2)
        except Exception as exc:  # python-hl7 raises assorted errors on malformed input
            if file_window:
                yield self._error(where, f"unparseable HL7 message ({type(exc).__name__})")
            return
        if message_type.upper() != "ORU" or trigger.upper() not in ("R01", ""):
            if file_window:
                yield self._error(
                    where, f"message type {_code(message_type, trigger)} is not ORU^R01"
                )
            return
        orders, orphans = _groups(message)
        if orphans and file_window:
            yield self._error(
                f"{where} segment {orphans[0]}",
                f"OBX segment {orphans[0]} follows no OBR of its patient ({len(orphans)} such)",
            )
        if not orders:
            if file_window:
                yield self._error(where, "no OBR segment")
            return
        context = _MessageContext(
            delims=Delimiters.from_msh(raw.text.split("\r", 1)[0]),
            charset=raw.charset,
            msh_time=_component(msh, 7),
            flags=raw.flags,
        )
        for index, order in enumerate(orders, start=1):
            located = f"{where} OBR {index}"
            try:
                final_at, time_source, precision = self._report_time(order, context)
            except RecordProblem as exc:
                if file_window:
                    yield self._error(located, str(exc))
                continue
            if not start <= final_at < end:
                continue
            try:
                item = self._report(order, context, located, final_at, time_source, precision)
            except RecordProblem as exc:
                yield self._error(located, str(exc))
                continue
            except Exception as exc:  # a malformed segment python-hl7 trips over: this OBR only
                yield self._error(located, f"cannot read this OBR ({type(exc).__name__})")
                continue
            if item is None:
                counts["ignored"] += 1
                continue
            yield item

    def _report_time(self, order: _Order, context: _MessageContext) -> tuple[datetime, str, Any]:
        """OBR-22, else the first OBX-14 of the order, else MSH-7 (which one is recorded)."""
        candidates = [("OBR-22", _component(order.obr, 22))]
        candidates += [
            (f"OBX-14 (OBX {i})", _component(obx, 14)) for i, obx in enumerate(order.obxs, 1)
        ]
        candidates.append(("MSH-7", context.msh_time))
        for name, value in candidates:
            if value:
                when, precision = parse_hl7_dtm(value, name, self.naive_timezone)
                return when, name.split(" ")[0], precision
        raise Hl7Problem("no report time: OBR-22, OBX-14 and MSH-7 are all empty")

    def _report(
        self,
        order: _Order,
        context: _MessageContext,
        where: str,
        final_at: datetime,
        time_source: str,
        final_precision: Any,
    ) -> ReportRecord | RISRecordError | None:
        """The record of one OBR (``None``: the exam mapping says to ignore it)."""
        obr = order.obr
        if order.pid is None:
            raise Hl7Problem("no PID segment before this OBR")
        patient_id = _patient_id(order.pid)
        texts = self._text_segments(order, context.delims)
        status = self._status(obr, texts)
        accession, id_source = "", ""
        for name, number in (("OBR-3", 3), ("OBR-18", 18), ("OBR-2", 2)):
            accession, id_source = _component(obr, number), name
            if accession:
                break
        if not accession:
            raise Hl7Problem("no accession number in OBR-3, OBR-18 or OBR-2")
        code = _component(obr, 4, 1)
        name = _component(obr, 4, 2) or None
        procedure = name or code or None
        section = _component(obr, 24).upper()
        hint = section if section in DICOM_MODALITIES else SECTION_MODALITIES.get(section)
        decision = self.exams.decide(code or None, name or code or None, hint)
        if decision.ignore:
            return None
        if decision.modality is None:
            raise Hl7Problem(
                "no modality: no exam mapping rule, OBR-24 is not a DICOM code and OBR-4 names none"
            )
        lines = [line for obx in texts for line in self._obx_lines(obx, context)]
        text = "\n".join(lines).strip("\n")
        if not text.strip():
            raise Hl7Problem("no report text: no TX/FT/ST OBX segment with text after this OBR")
        flags = list(context.flags)
        exam_at, exam_precision = None, None
        exam_raw = _component(obr, 7)
        if exam_raw:
            try:
                exam_at, exam_precision = parse_hl7_dtm(exam_raw, "OBR-7", self.naive_timezone)
            except RecordProblem:
                flags.append("exam_time_unreadable")
        return make_record(
            self.source,
            where,
            patient_id=patient_id,
            accession_number=accession,
            modality=decision.modality,
            procedure=procedure,
            report_type=decision.report_type,
            exam_at=exam_at,
            exam_precision=exam_precision,
            report_final_at=final_at,
            report_final_precision=final_precision,
            time_source=time_source,
            result_status=status,
            id_source=id_source,
            text_source="OBX",
            text=text,
            flags=tuple(flags),
        )

    def _text_segments(self, order: _Order, delims: Delimiters) -> list[Any]:
        """The OBX of the order that make up the report: text types, not deleted/withdrawn,
        not a comment code."""
        kept = []
        for obx in order.obxs:
            if _component(obx, 2).upper() not in TEXT_VALUE_TYPES:
                continue
            if _component(obx, 11).upper() in EXCLUDED_OBX_STATUSES:
                continue
            if self._is_comment(obx, delims):
                continue
            kept.append(obx)
        return kept

    def _is_comment(self, obx: Any, delims: Delimiters) -> bool:
        """OBX-3 component 1, or its last subcomponent (``71020&TCM``, ``&TCM``), is one of the
        excluded codes."""
        if not self.exclude_obx_codes or _field(obx, 3) is None:
            return False
        first = str(_field(obx, 3)).split(delims.repetition)[0].split(delims.component)[0]
        candidates = (first, first.split(delims.subcomponent)[-1])
        return any(c.strip().upper() in self.exclude_obx_codes for c in candidates)

    def _status(self, obr: Any, texts: list[Any]) -> ResultStatus:
        """OBR-25, else the OBX-11 of the text segments (the least final of them)."""
        order_status = _component(obr, 25)
        if order_status:
            return self.statuses.require(order_status, "OBR-25")
        found = [
            self.statuses.require(_component(obx, 11), f"OBX-11 (OBX {i})")
            for i, obx in enumerate(texts, 1)
            if _component(obx, 11)
        ]
        if not found:
            raise Hl7Problem("no result status: OBR-25 and OBX-11 are empty")
        return least_final(found)

    @staticmethod
    def _obx_lines(obx: Any, context: _MessageContext) -> list[str]:
        """The lines of one text OBX: each repetition of OBX-5 a line, an empty OBX-5 a blank
        line (a paragraph break in most RIS exports)."""
        value = _field(obx, 5)
        if value is None:
            return [""]
        lines: list[str] = []
        for repetition in value:
            decoded = unescape(str(repetition), context.delims, context.charset)
            lines.extend(decoded.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        return lines or [""]


@dataclass(frozen=True)
class _MessageContext:
    """What every report of one message shares."""

    delims: Delimiters
    charset: str
    msh_time: str
    flags: tuple[str, ...]


_NO_MSH = "no HL7 message (no MSH segment)"


def _code(message_type: str, trigger: str) -> str:
    """``ADT^A01`` when both look like table 0076/0003 codes, else their lengths only."""
    if all(len(v) <= 3 and v.isalnum() for v in (message_type, trigger) if v):
        return f"{message_type or '(empty)'}^{trigger or '(empty)'}"
    return f"({len(message_type)}+{len(trigger)} characters)"
