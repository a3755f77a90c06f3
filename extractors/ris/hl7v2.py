"""HL7 v2 connector: ORU^R01 result messages from a drop folder, parsed with python-hl7.

Each file holds one message or many (batches with FHS/BHS wrappers, MLLP framing, CR or LF
segment ends all accepted). Every OBR of a message is one report: its text is the OBX segments
of type TX/FT/ST that follow it (repetitions and OBX segments joined by newlines, HL7 escapes
decoded, OBX-11 ``D``/``W`` results left out). Fields used:

- patient id: PID-3 (the repetition typed ``MR``, else the first), component 1
- accession number: OBR-3.1 filler order number (else OBR-18, else OBR-2.1)
- procedure: OBR-4.2 (else OBR-4.1); modality: OBR-24 when it is a DICOM modality code,
  else inferred from the procedure
- exam time: OBR-7; report-final time: OBR-22 (windowed, half-open); status: OBR-25 in F/C/A

A message that cannot be used becomes a ``RISRecordError`` (file, message number, the field at
fault) and the rest of the folder goes on. Messages whose final time cannot be read are placed
in the window of the file's modification time, so each error is reported once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import hl7

from extractors.ris.base import (
    ReportRecord,
    RISRecordError,
    as_aware,
    check_window,
    make_record,
)
from extractors.ris.mapping import ReportTypeFn, infer_modality

log = logging.getLogger("rrief.ris.hl7")

FINAL_RESULT_STATUSES = frozenset({"F", "C", "A"})
TEXT_VALUE_TYPES = frozenset({"TX", "FT", "ST"})
EXCLUDED_OBX_STATUSES = frozenset({"D", "W"})
DICOM_MODALITIES = frozenset(
    {"CR", "DX", "MG", "CT", "MR", "US", "NM", "PT", "XA", "RF", "OT", "IO", "PX"}
)
_WRAPPERS = ("FHS", "BHS", "BTS", "FTS")
# HL7 DTM with at least a date: YYYYMMDD[HH[MM[SS[.S[S[S[S]]]]]]][+/-ZZZZ]
_DTM = re.compile(r"^\d{8}(\d{2}(\d{2}(\d{2}(\.\d{1,4})?)?)?)?([+-]\d{4})?$")


class Hl7Problem(ValueError):
    """A message field that cannot be used (names the field, never its value)."""


def split_messages(text: str) -> tuple[list[str], bool]:
    """Messages of a file (segments joined by CR) and whether stray content preceded the first
    MSH. MLLP framing bytes and batch/file wrapper segments are dropped."""
    text = text.replace("\x0b", "").replace("\x1c", "")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    messages: list[list[str]] = []
    stray = False
    for segment in text.split("\r"):
        segment = segment.strip()
        if not segment or segment[:3] in _WRAPPERS:
            continue
        if segment.startswith("MSH"):
            messages.append([segment])
        elif messages:
            messages[-1].append(segment)
        else:
            stray = True
    return ["\r".join(m) for m in messages], stray


def _field(segment: Any, number: int) -> Any:
    """Field ``number`` of a parsed segment, or ``None`` when absent."""
    return segment[number] if len(segment) > number else None


def _component(segment: Any, number: int, component: int = 1, repetition: int = 1) -> str:
    try:
        value = segment.extract_field(None, number, repetition, component, 1)
    except (IndexError, KeyError):
        return ""
    return str(value or "").strip()


def _timestamp(value: str, field: str, naive_timezone: tzinfo) -> datetime:
    if not value:
        raise Hl7Problem(f"{field} is missing")
    if not _DTM.match(value):  # python-hl7 silently misreads e.g. "2025-02-10 17:30"
        raise Hl7Problem(f"{field} is not an HL7 timestamp (YYYYMMDD[HHMM[SS]][+ZZZZ])")
    try:
        parsed = hl7.parse_datetime(value)
    except (ValueError, TypeError):
        raise Hl7Problem(f"{field} is not an HL7 timestamp (YYYYMMDD[HHMM[SS]][+ZZZZ])") from None
    if parsed is None:
        raise Hl7Problem(f"{field} is missing")
    return as_aware(parsed, naive_timezone)


def _patient_id(pid: Any) -> str:
    field = _field(pid, 3)
    repetitions = list(field) if field is not None else []
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


def _obx_text(message: hl7.Message, obx: Any) -> str | None:
    if _component(obx, 2).upper() not in TEXT_VALUE_TYPES:
        return None
    if _component(obx, 11).upper() in EXCLUDED_OBX_STATUSES:
        return None
    field = _field(obx, 5)
    if field is None:
        return None
    lines = [message.unescape(str(rep)) for rep in field]
    text = "\n".join(lines).replace("\r\n", "\n").replace("\r", "\n")
    return text if text.strip() else None


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
        report_type: ReportTypeFn | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        self.source = source
        self.encoding = encoding
        self.naive_timezone = naive_timezone
        self.report_type = report_type

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Every report of every file whose OBR-22 falls in ``[start, end)``, in file order."""
        check_window(start, end)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"HL7 drop folder {self.folder} does not exist")
        for path in sorted(p for p in self.folder.glob(self.pattern) if p.is_file()):
            mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            in_window = start <= mtime < end
            try:
                content = path.read_bytes().decode(self.encoding)
            except UnicodeDecodeError:
                if in_window:
                    yield self._error(path.name, f"not {self.encoding} text")
                continue
            messages, stray = split_messages(content)
            if not messages:
                if in_window:
                    yield self._error(path.name, "no HL7 message (no MSH segment)")
                continue
            if stray and in_window:
                yield self._error(path.name, "content before the first MSH segment was ignored")
            for number, raw in enumerate(messages, start=1):
                for item, placed_at in self._reports(path.name, number, raw, mtime):
                    if start <= placed_at < end:
                        yield item

    def _error(self, locator: str, reason: str) -> RISRecordError:
        return RISRecordError(source=self.source, locator=locator, reason=reason)

    def _reports(
        self, file_name: str, number: int, raw: str, mtime: datetime
    ) -> Iterator[tuple[ReportRecord | RISRecordError, datetime]]:
        """(record or error, the time that places it in a window) per OBR of one message."""
        where = f"{file_name} message {number}"
        try:
            message = hl7.parse(raw)
            message_type = _component(message.segment("MSH"), 9, 1)
            trigger = _component(message.segment("MSH"), 9, 2)
        except Exception as exc:  # python-hl7 raises assorted errors on malformed input
            yield self._error(where, f"unparseable HL7 message ({type(exc).__name__})"), mtime
            return
        if (message_type, trigger) != ("ORU", "R01"):
            yield self._error(where, f"message type {message_type}^{trigger} is not ORU^R01"), mtime
            return
        segments = list(message)
        obr_positions = [i for i, s in enumerate(segments) if str(s[0]) == "OBR"]
        if not obr_positions:
            yield self._error(where, "no OBR segment"), mtime
            return
        for index, position in enumerate(obr_positions, start=1):
            # PATIENT_RESULT groups: each OBR belongs to the last PID before it
            pids = [s for s in segments[:position] if str(s[0]) == "PID"][-1:]
            stop = obr_positions[index] if index < len(obr_positions) else len(segments)
            group = [s for s in segments[position + 1 : stop] if str(s[0]) == "OBX"]
            yield self._report(
                message, pids, segments[position], group, f"{where} OBR {index}", mtime
            )

    def _report(
        self,
        message: hl7.Message,
        pids: list[Any],
        obr: Any,
        obxs: list[Any],
        where: str,
        mtime: datetime,
    ) -> tuple[ReportRecord | RISRecordError, datetime]:
        try:
            final_at = _timestamp(_component(obr, 22), "OBR-22 (report time)", self.naive_timezone)
        except Hl7Problem as exc:
            return self._error(where, str(exc)), mtime
        try:
            if not pids:
                raise Hl7Problem("no PID segment")
            status = _component(obr, 25).upper()
            if status not in FINAL_RESULT_STATUSES:
                raise Hl7Problem(f"OBR-25 result status {status or '(empty)'!r} is not final")
            accession = _component(obr, 3) or _component(obr, 18) or _component(obr, 2)
            if not accession:
                raise Hl7Problem("no accession number in OBR-3, OBR-18 or OBR-2")
            procedure = _component(obr, 4, 2) or _component(obr, 4, 1) or None
            section = _component(obr, 24).upper()
            modality = section if section in DICOM_MODALITIES else infer_modality(procedure)
            if modality is None:
                raise Hl7Problem("no modality: OBR-24 is not a DICOM code and OBR-4 names none")
            texts = [t for t in (_obx_text(message, obx) for obx in obxs) if t is not None]
            if not texts:
                raise Hl7Problem("no report text: no TX/FT/ST OBX segment after this OBR")
            exam_raw = _component(obr, 7)
            exam_at = _timestamp(exam_raw, "OBR-7", self.naive_timezone) if exam_raw else None
            fields: dict[str, Any] = {
                "patient_id": _patient_id(pids[0]),
                "accession_number": accession,
                "modality": modality,
                "procedure": procedure,
                "exam_at": exam_at,
                "report_final_at": final_at,
                "text": "\n".join(texts),
            }
        except Hl7Problem as exc:
            return self._error(where, str(exc)), final_at
        if self.report_type is not None:
            fields["report_type"] = self.report_type(modality, procedure)
        return make_record(self.source, where, **fields), final_at
