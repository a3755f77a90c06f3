"""Which result statuses make a report final, corrected or preliminary.

HL7 v2 senders fill OBR-25 (or, when it is empty, OBX-11) with table 0123/0085 codes (``F``,
``C``, ``P``) or their own words (``FINAL``, ``PRELIM``, ``WET READ``); the vocabulary is a
setting (``RRIEF_RIS_*_STATUSES``). FHIR's ``DiagnosticReport.status`` is a fixed value set.
Preliminary reports are kept only when ``include_preliminary`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from extractors.ris.base import RecordProblem, ResultStatus

DEFAULT_FINAL = "F,FINAL"
DEFAULT_CORRECTED = "C,A,CORRECTED"
DEFAULT_PRELIMINARY = "P,PRELIM,PRELIMINARY,WET READ"

# HL7 table 0123 (result status) and 0085 (observation result status): safe to name in an
# error message because they are single letters of a published table, not free text.
HL7_TABLE_CODES = frozenset("OISAPCRFXYZDWNUBV")

FHIR_STATUSES: dict[str, ResultStatus | None] = {
    "final": "final",
    "amended": "corrected",
    "corrected": "corrected",
    "appended": "corrected",
    "preliminary": "preliminary",
    "partial": "preliminary",
    "registered": None,
    "cancelled": None,
    "entered-in-error": None,
    "unknown": None,
}

_SPACES = re.compile(r"\s+")


def normalize_code(value: str) -> str:
    """``" wet  read "`` → ``"WET READ"``: case and runs of blanks do not matter."""
    return _SPACES.sub(" ", value).strip().upper()


def parse_codes(value: str | Iterable[str]) -> frozenset[str]:
    """A comma-separated setting (or any iterable) as a set of normalized codes."""
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(normalize_code(v) for v in items if v.strip())


class StatusVocabulary(BaseModel):
    """The codes of each kind of result; one code may belong to one kind only."""

    model_config = ConfigDict(frozen=True)

    final: frozenset[str] = Field(default_factory=lambda: parse_codes(DEFAULT_FINAL))
    corrected: frozenset[str] = Field(default_factory=lambda: parse_codes(DEFAULT_CORRECTED))
    preliminary: frozenset[str] = Field(default_factory=lambda: parse_codes(DEFAULT_PRELIMINARY))
    include_preliminary: bool = False

    @classmethod
    def from_settings_values(
        cls,
        final: str | Iterable[str] = DEFAULT_FINAL,
        corrected: str | Iterable[str] = DEFAULT_CORRECTED,
        preliminary: str | Iterable[str] = DEFAULT_PRELIMINARY,
        include_preliminary: bool = False,
    ) -> StatusVocabulary:
        """Build from the comma-separated settings; a code listed under two kinds is refused."""
        vocab = cls(
            final=parse_codes(final),
            corrected=parse_codes(corrected),
            preliminary=parse_codes(preliminary),
            include_preliminary=include_preliminary,
        )
        kinds = {"final": vocab.final, "corrected": vocab.corrected, "prelim": vocab.preliminary}
        seen: dict[str, str] = {}
        for kind, codes in kinds.items():
            for code in sorted(codes):
                if code in seen:
                    raise ValueError(f"result status {code!r} is listed as {seen[code]} and {kind}")
                seen[code] = kind
        if not vocab.final and not vocab.corrected:
            raise ValueError("no final or corrected result status is configured")
        return vocab

    def classify(self, value: str) -> ResultStatus | None:
        """The kind of ``value``, or ``None`` when it is in no list."""
        code = normalize_code(value)
        if code in self.final:
            return "final"
        if code in self.corrected:
            return "corrected"
        if code in self.preliminary:
            return "preliminary"
        return None

    def require(self, value: str, field: str) -> ResultStatus:
        """The kind of ``value`` if the report is to be kept, else a ``RecordProblem``.

        The message names the code itself only when it is a letter of HL7 table 0123/0085 or a
        configured code; anything else a sender put there is described by its length.
        """
        code = normalize_code(value)
        if not code:
            raise RecordProblem(f"{field} result status is empty")
        kind = self.classify(code)
        known = code in HL7_TABLE_CODES or kind is not None  # a table letter or a listed code
        shown = f"{code!r}" if known else f"({len(code)} characters)"
        if kind is None:
            raise RecordProblem(
                f"{field} result status {shown} is not final, corrected or preliminary "
                "(RRIEF_RIS_FINAL_STATUSES, _CORRECTED_STATUSES, _PRELIMINARY_STATUSES)"
            )
        if kind == "preliminary" and not self.include_preliminary:
            raise RecordProblem(
                f"{field} result status {shown} is preliminary "
                "(kept only with RRIEF_RIS_INCLUDE_PRELIMINARY=true)"
            )
        return kind


def least_final(kinds: Iterable[ResultStatus]) -> ResultStatus:
    """A report made of several results is only as final as its least final part."""
    found = set(kinds)
    for kind in ("preliminary", "corrected"):
        if kind in found:
            return kind  # type: ignore[return-value]
    return "final"


def fhir_status(value: object, include_preliminary: bool) -> ResultStatus:
    """``DiagnosticReport.status`` → the kind of result, or a ``RecordProblem``."""
    if not isinstance(value, str) or value not in FHIR_STATUSES:
        size = len(value) if isinstance(value, str) else 0
        raise RecordProblem(f"status ({size} characters) is not a FHIR DiagnosticReport status")
    kind = FHIR_STATUSES[value]
    if kind is None:
        raise RecordProblem(f"status {value!r} is not a result (registered, cancelled, ...)")
    if kind == "preliminary" and not include_preliminary:
        raise RecordProblem(
            f"status {value!r} is preliminary (kept only with RRIEF_RIS_INCLUDE_PRELIMINARY=true)"
        )
    return kind
