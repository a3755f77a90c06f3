"""Which modality an exam is, and which extraction schema its report needs.

A RIS names exams in its own words. A site mapping file (``RRIEF_RIS_EXAM_MAP``, YAML) maps
exam codes or procedure-name patterns to a modality and a report type, or tells the connector to
ignore the exam; the built-in patterns below (chest radiographs → ``cxr``, mammography →
``mammo``, coronary CT angiography → ``ccta``) decide whatever the file does not name. The
:class:`ExamMapper` counts the exams the file does not cover, so a data engineer can complete
it (``rrief ris check`` prints them). Example file::

    exams:
      - code: CTABD            # exact exam code (OBR-4.1, code.coding.code), any case
        modality: CT
        report_type: none      # keep the report, extract nothing
      - code: BED
        modality: MG
        report_type: mammo
      - pattern: '^PETCT\\b'    # regular expression searched in the procedure name
        modality: PT
        report_type: ignore    # do not fetch these reports at all
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "XR"})
IGNORE = "ignore"
NO_SCHEMA = "none"

_MODALITY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("MG", re.compile(r"\bmammo|\bMG\b|\btomosynthesis\b|\bDBT\b", re.I)),
    ("PT", re.compile(r"\bPET\b|\bPET-?CT\b|\bPETCT\b|\bPET/CT\b|positron", re.I)),
    ("NM", re.compile(r"\bNM\b|\bSPECT\b|nuclear med|scintigra|\bbone scan\b", re.I)),
    ("CT", re.compile(r"\bCTA?\b|computed tomograph|\bCCTA\b", re.I)),
    ("MR", re.compile(r"\bMRI?\b|\bMRA\b|magnetic resonance", re.I)),
    ("US", re.compile(r"\bUS\b|ultrasound|sonogra|\bdoppler\b", re.I)),
    ("RF", re.compile(r"\bfluoro", re.I)),
    ("DX", re.compile(r"\bX-?RAY\b|\bXR\b|\bCXR\b|radiograph", re.I)),
)

_CHEST = re.compile(r"\bchest\b|\bthorax\b|\bthoracic\b|\bCXR\b|\blungs?\b|\bPA\b.*\blat", re.I)
# Anatomy that makes a "thoracic"/"PA and lateral" radiograph something other than a chest film.
_NOT_CHEST = re.compile(
    r"\bspine\b|\bspinal\b|\bvertebra|\b[TL]-?spine\b|\bribs?\b|\bstern(um|al)\b|\bclavicle"
    r"|\bscapula|\bshoulder|\babdom|\bpelvi|\bhip|\bcervical|\blumbar|\bsacr|\bcoccyx|\bskull"
    r"|\bsinus|\bneck\b|\bhand|\bwrist|\belbow|\bhumer|\bforearm|\bfemur|\bknee|\btibia"
    r"|\bankle|\bfoot|\bfeet",
    re.I,
)
_CORONARY = re.compile(r"\bcoronar|\bCCTA\b|\bcardiac\b|\bheart\b|\bcalcium scor|\bCTCA\b", re.I)
_REPORT_TYPE = re.compile(r"^[a-z][a-z0-9_-]*$")


def normalize_modality(value: str) -> str:
    """Upper-case DICOM-style code (``"ct"`` → ``"CT"``)."""
    return value.strip().upper()


def infer_modality(procedure: str | None) -> str | None:
    """Guess the modality from a procedure name (``"XR CHEST 2 VIEWS"`` → ``"DX"``)."""
    if not procedure:
        return None
    for code, pattern in _MODALITY_PATTERNS:
        if pattern.search(procedure):
            return code
    return None


def is_chest_radiograph(procedure: str | None) -> bool:
    """A chest film: a chest term and no other anatomy ("XR Thoracic Spine" is a spine film)."""
    if procedure is None:
        return True  # an unnamed radiograph in a chest feed
    return bool(_CHEST.search(procedure)) and not _NOT_CHEST.search(procedure)


def default_report_type(modality: str, procedure: str | None) -> str | None:
    """The builtin schema for an exam, or ``None`` when none applies (the report is still kept).

    Radiographs are ``cxr`` when the procedure is a chest exam (or unnamed); mammography is
    ``mammo``; CT is ``ccta`` only for coronary/cardiac procedures.
    """
    modality = normalize_modality(modality)
    if modality == "MG":
        return "mammo"
    if modality in RADIOGRAPH_MODALITIES:
        return "cxr" if is_chest_radiograph(procedure) else None
    if modality == "CT" and procedure and _CORONARY.search(procedure):
        return "ccta"
    return None


class ExamRule(BaseModel):
    """One line of the site mapping file: match an exam, give its modality and report type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str | None = Field(default=None, description="exact exam code, compared ignoring case")
    pattern: str | None = Field(default=None, description="regex searched in the procedure name")
    modality: str | None = Field(default=None, description="DICOM modality of these exams")
    report_type: str = Field(description="schema name, 'none' (no schema) or 'ignore'")

    @field_validator("code", "modality", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # YAML reads `code: 71046` as a number
        if isinstance(value, str):
            return value.strip().upper() or None
        return value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("report_type")
    @classmethod
    def _report_type(cls, value: str) -> str:
        value = value.strip().lower()
        if not _REPORT_TYPE.match(value):
            raise ValueError("must be a schema name, 'none' or 'ignore'")
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> ExamRule:
        if self.code is None and self.pattern is None:
            raise ValueError("a rule needs a code, a pattern or both")
        return self

    def matches(self, codes: tuple[str, ...], name: str | None) -> bool:
        if self.code is not None and self.code not in codes:
            return False
        return self.pattern is None or bool(re.search(self.pattern, name or "", re.I))


class ExamMapFile(BaseModel):
    """The site mapping file: ``exams:`` and a list of rules, first match wins."""

    model_config = ConfigDict(extra="forbid")

    exams: list[ExamRule] = Field(default_factory=list)


@dataclass(frozen=True)
class ExamDecision:
    """What to do with one exam: its modality (``None``: unknown, the record is refused), its
    report type (``None``: keep, extract nothing) or ``ignore``; and which rule decided."""

    modality: str | None
    report_type: str | None
    ignore: bool
    rule: str  # "site rule 3" or "built-in"


@dataclass(frozen=True)
class UnmappedExam:
    """An exam code/name the site file does not cover, and what the built-ins made of it."""

    code: str
    name: str
    outcome: str  # e.g. "cxr", "no schema", "no modality"


class ExamMapper:
    """Site rules first, built-in patterns second; counts what the site rules did not cover."""

    def __init__(self, rules: list[ExamRule] | tuple[ExamRule, ...] = (), path: str = "") -> None:
        self.rules = tuple(rules)
        self.path = path
        self.unmapped: Counter[UnmappedExam] = Counter()
        self.ignored: Counter[str] = Counter()

    @classmethod
    def from_file(cls, path: str | Path) -> ExamMapper:
        """Load a mapping file, or raise ``ValueError`` naming the file and the bad rule."""
        path = Path(path)
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ValueError(f"exam mapping file {path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ValueError(f"exam mapping file {path}: not valid YAML{where}") from None
        try:
            parsed = ExamMapFile.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise ValueError(f"exam mapping file {path}: {problems}") from None
        return cls(parsed.exams, path=str(path))

    def decide(
        self,
        code: str | Sequence[str] | None,
        name: str | None,
        modality: str | None = None,
    ) -> ExamDecision:
        """Modality and report type of an exam. ``code``: its exam code, or all of them (a
        FHIR ``code`` has one per coding); ``modality``: what the message itself says (OBR-24,
        a DICOM coding), used unless the site rule names one."""
        raw = [code] if isinstance(code, str) else list(code or ())
        codes = tuple(c.strip().upper() for c in raw if c and c.strip())
        guess = (
            modality or infer_modality(name) or next(filter(None, map(infer_modality, codes)), None)
        )
        for number, rule in enumerate(self.rules, start=1):
            if rule.matches(codes, name):
                found = rule.modality or guess
                if rule.report_type == IGNORE:
                    self.ignored[f"site rule {number}"] += 1
                    return ExamDecision(found, None, True, f"site rule {number}")
                schema = None if rule.report_type == NO_SCHEMA else rule.report_type
                return ExamDecision(found, schema, False, f"site rule {number}")
        schema = default_report_type(guess, name) if guess else None
        outcome = schema or ("no schema" if guess else "no modality")
        self.unmapped[UnmappedExam("/".join(codes), (name or "").strip(), outcome)] += 1
        return ExamDecision(guess, schema, False, "built-in")

    def reset(self) -> None:
        """Forget the counts (one dry run or fetch at a time)."""
        self.unmapped.clear()
        self.ignored.clear()
