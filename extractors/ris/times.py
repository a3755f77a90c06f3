"""Timestamps as RIS feeds send them: HL7 v2 ``DTM`` and FHIR ``dateTime``, partial or full.

Both formats allow a bare year or year-month (``2012``, ``201212``, ``2012-12``). Such a value is
read as the first instant of its period in the site's time zone and returned with its precision,
so a report is never refused for an optional time and nobody mistakes ``2012-12`` for midnight
on December 1st. A value that is not a timestamp at all raises ``RecordProblem`` naming the field
and the length, never the value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from extractors.ris.base import Precision, RecordProblem, as_aware

# YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]
_HL7_DTM = re.compile(
    r"^(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})"
    r"(?:(?P<s>\d{2})(?:\.(?P<f>\d{1,4}))?)?)?)?)?)?(?P<tz>[+-]\d{4})?$"
)
# YYYY | YYYY-MM | YYYY-MM-DD | YYYY-MM-DDThh:mm[:ss[.s+]][Z|+hh:mm]
_FHIR_DATETIME = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})(?:T(?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_ORDER: tuple[tuple[str, Precision], ...] = (
    ("y", "year"),
    ("mo", "month"),
    ("d", "day"),
    ("h", "hour"),
    ("mi", "minute"),
    ("s", "second"),
)


def _offset(value: str | None) -> tzinfo | None:
    if not value:
        return None
    if value == "Z":
        return UTC
    sign = -1 if value[0] == "-" else 1
    digits = value[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _build(match: re.Match[str], naive_timezone: tzinfo, field: str) -> tuple[datetime, Precision]:
    parts = match.groupdict()
    precision: Precision = "year"
    for name, level in _ORDER:
        if parts[name] is None:
            break
        precision = level
    fraction = (parts["f"] or "").ljust(6, "0")[:6]
    try:
        value = datetime(
            int(parts["y"]),
            int(parts["mo"] or 1),
            int(parts["d"] or 1),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int(fraction or 0),
            tzinfo=_offset(parts["tz"]),
        )
    except ValueError:  # month 13, February 30, hour 25 ...
        raise RecordProblem(f"{field} is not a valid date or time") from None
    return as_aware(value, naive_timezone), precision


def parse_hl7_dtm(value: str, field: str, naive_timezone: tzinfo) -> tuple[datetime, Precision]:
    """An HL7 v2 ``DTM``/``TS`` value (component 1), with its precision."""
    if not value:
        raise RecordProblem(f"{field} is missing")
    match = _HL7_DTM.match(value.strip())
    if match is None:  # e.g. "2025-02-10 17:30": python-hl7 would silently misread it
        raise RecordProblem(
            f"{field} ({len(value)} characters) is not an HL7 timestamp "
            "(YYYY[MM[DD[HHMM[SS]]]][+ZZZZ])"
        )
    return _build(match, naive_timezone, field)


def parse_fhir_datetime(
    value: object, field: str, naive_timezone: tzinfo
) -> tuple[datetime, Precision]:
    """A FHIR ``date``/``dateTime``/``instant`` (partial dates allowed), with its precision."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordProblem(f"{field} is missing")
    if not isinstance(value, str):
        raise RecordProblem(f"{field} is not a FHIR dateTime (a JSON {type(value).__name__})")
    match = _FHIR_DATETIME.match(value.strip())
    if match is None:
        raise RecordProblem(f"{field} ({len(value)} characters) is not a FHIR dateTime")
    return _build(match, naive_timezone, field)
