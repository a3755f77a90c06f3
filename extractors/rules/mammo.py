"""Rule extractor for mammography reports (schema ``mammo@1``).

What it reads, and how it decides (the semantics of ``mammo.yaml``, made concrete):

* **BI-RADS** in the ways reports write it: ``BI-RADS 4``, ``BIRADS: 4``, ``bi-rads category 4a``,
  ``BI-RADS 4 A:``, ``(birads 3$2)`` (several findings joined by ``$``), ``BI-RADS: right 2,
  left 4``, ``Category 5``, ``Assessment: 4B``, roman numerals after the keyword. When a sentence
  states no number, the assessment words count: ``negative`` exam (1), ``benign`` finding(s) (2),
  ``probably benign`` (3), ``incomplete`` / ``need(s) additional imaging`` (0), ``suspicious
  abnormality`` (4; low/moderate/high suspicion -> 4A/4B/4C), ``highly suggestive of
  malignancy`` (5), ``known biopsy-proven malignancy`` (6). A category preceded by ``prior``,
  ``previous(ly)``, ``was``, ``from`` ... describes an earlier exam and is ignored. Words are
  read only when the report states no number anywhere, and then only in the impression when
  the report has one. ``ACR 2`` alone is ambiguous (old ACR
  density types 1-4 use the same form) and is read neither as BI-RADS nor as density.
* **Highest** means the order 1 < 2 < 3 < 0 < 4 < 4A < 4B < 4C < 5 < 6 (0, an incomplete
  assessment that needs recall, ranks between 3 and 4). Each breast gets the highest category
  stated for it; ``exam_birads`` is the highest over both breasts and any exam-level statement.
* **Density**: ACR letters (``ACR C``, ``density type b``, ``breast composition: d``), old ACR
  numbers only with a density word (``density ACR 3`` -> c) and the lexicon phrases (almost
  entirely fatty, scattered fibroglandular, heterogeneously dense, extremely dense). ``dense
  breasts`` alone is not enough. If several are stated, the densest wins.
* **Laterality**, most specific first: (1) a side named in the sentence (``right``, ``LT``,
  ``bilateral``, ``both breasts``; when a sentence names both sides, the clause's side); (2) a
  side header in the text (``LEFT BREAST:``, ``R:``, ``Right breast - ...``). A header alone on
  its line right before a section header (``LEFT BREAST:\nFINDINGS: ...\nOPINION: ...``, the
  per-breast form used for CDD-CESM rows) opens a per-breast report: its side holds for
  everything up to the next such header, even where a sentence names another side. Other
  headers cover their section (inline ones: their paragraph) up to the next side header;
  (3) the side of the sentence it continues (after a ``;``, or ``no associated mass``);
  a side named in a *history phrase* (``history of right breast cancer``, ``prior left
  lumpectomy``, ``status post right mastectomy``, up to the end of its clause) places only what
  the phrase itself says (the surgery, its clips) and counts for nothing else: neither for the
  other mentions of its sentence nor for the defaults below (a ``known`` cancer is current);
  (4) otherwise a default: for a finding, the side the exam covers (a unilateral title such as
  ``LEFT DIAGNOSTIC MAMMOGRAM``; a bilateral exam's ``no suspicious mass`` covers both), else
  the one side its section names, else the one side the report names, else both; for an
  assessment, the one side its section names first (``Suspicious calcifications right breast.
  BI-RADS 4B.``), then the same chain. The ``meta`` of a report is not read: the side must be
  in the text.
* **BI-RADS from unsided text** (rule 4, or a sentence saying ``overall``, which covers every
  breast of the exam) only fills a breast with no sided assessment; it always counts for
  ``exam_birads``. An unsided *finding* in the impression that the report places on a side
  elsewhere (the impression restating the findings) goes to that side.
* **Findings** per breast: ``present`` beats ``absent`` (a finding stated anywhere for the
  breast is present); a named nodule, cyst or fibroadenoma is a mass; calcifications are
  ``suspicious`` (pleomorphic, fine linear, branching, amorphous, clustered, grouped, segmental,
  suspicious, malignant) over ``benign`` (benign, coarse, vascular, popcorn, rim, dystrophic,
  punctate, macro-) over ``present``; asymmetry
  keeps its type (developing > focal > global > present). Lymph nodes count when intramammary
  or qualified as abnormal (enlarged, prominent, suspicious, lymphadenopathy); axillary nodes
  called normal/benign, or named without a qualifier, are ``absent``. Skin/nipple changes:
  thickening, retraction, dimpling, inversion, peau d'orange, increased skin thickness;
  ``normal skin thickness`` is absent. Post-surgical: post-operative, scar, lumpectomy,
  mastectomy, surgical clips, status post, post-radiation change (not ``status post
  chemotherapy``: systemic treatment leaves no local change).
* **Negation**: a cue (no, without, negative for, free of, absence of, nor ...) before the
  mention within the same clause, or ``not seen`` / ``resolved`` after it, makes the finding
  ``absent``; ``may obscure`` / ``rule out`` mentions assert nothing. Indication, history and
  comparison sections are not read (they describe why the exam was done or earlier exams).
  Negation is local rather than :mod:`extractors.rules.scope` because that module reads
  ``suspicious`` / ``probably`` as uncertainty cues, while in mammography they describe a
  finding ("no speculated mass or suspicious microcalcifications" must stay negated).

Evidence for every stated value is the sentence (offsets into the report text) it came from.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from extractors.extract.base import EvidenceMap, Labels
from extractors.results import Evidence
from extractors.rules.base import RuleExtractor, evidence_of
from extractors.rules.patterns import sentence_cache
from extractors.text.document import Document
from extractors.text.sentences import Sentence

RULES_VERSION = "1"

LEFT, RIGHT = "left", "right"
BOTH: frozenset[str] = frozenset({LEFT, RIGHT})
SIDES: tuple[str, str] = (LEFT, RIGHT)

#: The ranking used for "highest": 0 (incomplete, needs recall) sits between 3 and 4.
BIRADS_ORDER: tuple[str, ...] = ("1", "2", "3", "0", "4", "4A", "4B", "4C", "5", "6")
_BIRADS_RANK = {v: i for i, v in enumerate(BIRADS_ORDER)}

_SKIP_SECTIONS = frozenset({"indication", "comparison"})
_FINDING_FIELDS = (
    "mass",
    "calcifications",
    "asymmetry",
    "architectural_distortion",
    "lymph_nodes",
    "skin_nipple_changes",
    "post_surgical_change",
)
# Higher wins when one breast gets several values for a field.
_VALUE_PRIORITY: dict[str, dict[str, int]] = {
    "presence": {"absent": 1, "present": 2},
    "calcifications": {"absent": 1, "present": 2, "benign": 3, "suspicious": 4},
    "asymmetry": {"absent": 1, "present": 2, "global": 3, "focal": 4, "developing": 5},
}


def birads_rank(value: str) -> int:
    """Rank of a BI-RADS category in the "highest" order; raises ``ValueError`` if unknown."""
    try:
        return _BIRADS_RANK[value]
    except KeyError:
        raise ValueError(
            f"unknown BI-RADS category {value!r}; expected one of {', '.join(BIRADS_ORDER)}"
        ) from None


def highest_birads(values: Iterable[str]) -> str | None:
    """The highest category of ``values`` (None when empty)."""
    best: str | None = None
    for v in values:
        if best is None or birads_rank(v) > birads_rank(best):
            best = v
    return best


# --------------------------------------------------------------------------------------------
# Laterality
# --------------------------------------------------------------------------------------------
_SIDE_WORD = r"(?:right|left|rt|lt|r|l|bilateral|both)"
# Titles ("LEFT DIAGNOSTIC MAMMOGRAM") are not headers: they give the exam's coverage instead.
_HEADER_NOUN = r"(?:\s+(?:breasts?|sides?|axilla|findings|impression|assessment|opinion))?"
# "LEFT BREAST:" / "R:" / "Right breast -" alone on its line.
_STANDALONE_HEADER_RE = re.compile(
    r"^[ \t]*(?:\d+[.)][ \t]*)?(?P<side>" + _SIDE_WORD + r")\.?" + _HEADER_NOUN + r"[ \t]*"
    r"(?P<colon>[:\-–—]?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
# "RIGHT BREAST: Scattered ..." at a line start, after a sentence end or after a section colon.
_INLINE_HEADER_RE = re.compile(
    r"(?:^|(?<=[.;:])[ \t]+)[ \t]*(?P<side>"
    + _SIDE_WORD
    + r")"
    + _HEADER_NOUN
    + r"[ \t]*(?::|[\-–—][ \t])[ \t]*(?=\S)",
    re.IGNORECASE | re.MULTILINE,
)
_SIDE_MENTION_RE = re.compile(
    r"\b(?:(?P<right>right|rt)(?!\s+angle)|(?P<left>left|lt)(?!\s+(?:in\s+place|behind|over|untreated|with))"
    r"|(?P<both>bilateral(?:ly)?|bilat|b/l|both\s+(?:breasts|sides|axillae)|either\s+breast|each\s+breast)"
    r"|(?P<r1>r)(?=\s*(?:breast|axilla|side)\b)|(?P<l1>l)(?=\s*(?:breast|axilla|side)\b))\b"
    r"|\((?P<r2>r)\)|\((?P<l2>l)\)",
    re.IGNORECASE,
)
_CLAUSE_BREAK_RE = re.compile(r"[,;]|\b(?:and|but|while|whereas)\b", re.IGNORECASE)
_OVERALL_RE = re.compile(
    r"\b(?:overall|combined|exam(?:ination)?\s+(?:bi-?rads|assessment|category))\b", re.IGNORECASE
)
# "No associated mass." continues the sentence before it, and so does its side.
_CONTINUATION_RE = re.compile(r"\b(?:associated|accompanying|corresponding)\b", re.IGNORECASE)
_EXAM_WORD_RE = re.compile(
    r"\b(?:mammo\w*|tomosynthesis|views?|cc|mlo|exam\w*|study|imaging)\b", re.IGNORECASE
)


def _header_sides(word: str) -> frozenset[str]:
    w = word.lower()
    if w in ("right", "rt", "r"):
        return frozenset({RIGHT})
    if w in ("left", "lt", "l"):
        return frozenset({LEFT})
    return BOTH


@dataclass(frozen=True)
class _SideMention:
    """A side word; ``history``: the span of the history phrase it names a side in."""

    start: int
    end: int
    sides: frozenset[str]
    history: tuple[int, int] | None = None


# A side named in a history phrase: "history of right breast cancer", "prior left lumpectomy",
# "status post right mastectomy". It is the side of that past event, not of the findings around
# it, so it places only what lies inside the phrase and sets no default (a "known" cancer is a
# current one and is not history).
_HISTORY_SIDE_RE = re.compile(
    r"\b(?:(?:personal\s+|family\s+)?history\s+of|h/o|hx\s+of|prior|previous(?:ly)?|"
    r"status[\s\-]+post|s/p|treated\s+for|post)\b(?:\W+[\w/\-]+){0,3}?\W+"
    r"(?P<side>right|left|rt|lt|bilateral)\b(?:\W+[\w\-]+){0,2}?\W+"
    r"(?:cancers?|carcinomas?|malignanc(?:y|ies)|dcis|lumpectom(?:y|ies)|mastectom(?:y|ies)|"
    r"quadrantectomy|surgery|excision|biops(?:y|ies)|radiation|radiotherapy|reconstruction|"
    r"implants?)\b",
    re.IGNORECASE,
)


# A history phrase runs on to the end of its clause ("... cancer treated with lumpectomy and
# radiation"), not past what the patient has now ("..., now with a new mass").
_HISTORY_END_RE = re.compile(
    r"[;,]|\b(?:but|while|whereas|now|presents?|presenting|currently|new)\b", re.IGNORECASE
)


@sentence_cache
def _side_mentions(text: str) -> tuple[_SideMention, ...]:
    history = {}
    for h in _HISTORY_SIDE_RE.finditer(text):
        stop = _HISTORY_END_RE.search(text, h.end())
        history[h.start("side")] = (h.start(), stop.start() if stop else len(text))
    out = []
    for m in _SIDE_MENTION_RE.finditer(text):
        if m.group("right") or m.group("r1") or m.group("r2"):
            sides = frozenset({RIGHT})
        elif m.group("left") or m.group("l1") or m.group("l2"):
            sides = frozenset({LEFT})
        else:
            sides = BOTH
        out.append(_SideMention(m.start(), m.end(), sides, history.get(m.start())))
    return tuple(out)


def _current(mentions: Iterable[_SideMention]) -> tuple[_SideMention, ...]:
    """The side mentions that are not part of a history phrase."""
    return tuple(m for m in mentions if m.history is None)


def _union(mentions: Iterable[_SideMention]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for m in mentions:
        out |= m.sides
    return out


@dataclass(frozen=True)
class _Scope:
    """Text a side header covers. ``report``: the header opens a per-breast report (it stands
    right before a section header), so its side holds even where a sentence names another."""

    start: int
    end: int
    sides: frozenset[str]
    report: bool = False


_NON_SPACE_RE = re.compile(r"\S")
# Every start of "\n\n" (overlapping ones too: "\n\n\n" holds two).
_BLANK_LINE_RE = re.compile(r"(?=\n\n)")


def _header_scopes(doc: Document) -> tuple[list[_Scope], list[tuple[int, int]]]:
    """Side-header scopes (block-level ones first) and the spans of header-only lines."""
    text = doc.text
    section_starts = sorted(s.header_start for s in doc.sections if s.header_start is not None)
    section_start_set = set(section_starts)
    headers: list[tuple[int, int, frozenset[str], str]] = []  # start, end, sides, kind
    reports: set[int] = set()
    header_lines: list[tuple[int, int]] = []
    taken: set[int] = set()
    for m in _STANDALONE_HEADER_RE.finditer(text):
        word = m.group("side")
        if not m.group("colon") and (len(word) < 4 or not re.search(r"breast", m.group(0), re.I)):
            continue  # without a colon only "RIGHT BREAST" (side + breast) makes a header line
        nxt = _NON_SPACE_RE.search(text, m.end())
        before_section = nxt is not None and nxt.start() in section_start_set
        if before_section:
            reports.add(m.start())
        # (section_starts is sorted: its first entry is the smallest)
        kind = (
            "block"
            if before_section or not (section_starts and section_starts[0] < m.start())
            else "section"
        )
        headers.append((m.start(), m.end(), _header_sides(word), kind))
        header_lines.append((m.start("side"), m.end()))
        taken.add(m.start("side"))
    for m in _INLINE_HEADER_RE.finditer(text):
        if m.start("side") in taken:
            continue
        headers.append((m.start("side"), m.end(), _header_sides(m.group("side")), "inline"))
    headers.sort()
    blanks = [m.start() for m in _BLANK_LINE_RE.finditer(text)]
    blocks = [h for h in headers if h[3] == "block"]
    scopes: list[_Scope] = []
    for i, (start, _end, sides, _kind) in enumerate(blocks):
        stop = blocks[i + 1][0] if i + 1 < len(blocks) else len(text)
        scopes.append(_Scope(start, stop, sides, report=start in reports))
    for i, (start, end, sides, kind) in enumerate(headers):
        if kind == "block":
            continue
        stop = headers[i + 1][0] if i + 1 < len(headers) else len(text)
        later = bisect_right(section_starts, start)  # the first section header after it
        if later < len(section_starts):
            stop = min(stop, section_starts[later])
        if kind == "inline":
            # the first blank line at or after the header's end (as text.find("\n\n", end))
            j = bisect_left(blanks, end)
            if j < len(blanks):
                stop = min(stop, blanks[j])
        scopes.append(_Scope(start, stop, sides))
    return scopes, header_lines


class _ScopeIndex:
    """The innermost (latest-starting) header scope holding an offset, by bisection over
    precomputed segments.

    Between two consecutive scope boundaries the answer does not change, so it is computed
    once per segment with a sweep (a heap of the open scopes keyed like the linear scan:
    latest start, then latest in list order), making a report with many side headers linear.
    """

    __slots__ = ("answers", "points")

    def __init__(self, scopes: Sequence[_Scope]) -> None:
        opening: dict[int, list[int]] = {}
        closing: dict[int, list[int]] = {}
        for i, s in enumerate(scopes):
            if s.start < s.end:
                opening.setdefault(s.start, []).append(i)
                closing.setdefault(s.end, []).append(i)
        self.points = sorted(set(opening) | set(closing))
        self.answers: list[_Scope | None] = []
        heap: list[tuple[int, int]] = []  # (-start, -index) of open scopes
        closed: set[int] = set()
        for point in self.points:
            closed.update(closing.get(point, ()))
            for i in opening.get(point, ()):
                heapq.heappush(heap, (-scopes[i].start, -i))
            while heap and -heap[0][1] in closed:
                heapq.heappop(heap)
            self.answers.append(scopes[-heap[0][1]] if heap else None)

    def at(self, offset: int) -> _Scope | None:
        i = bisect_right(self.points, offset) - 1
        return self.answers[i] if i >= 0 else None


# --------------------------------------------------------------------------------------------
# Negation
# --------------------------------------------------------------------------------------------
_NEG_CUE_RE = re.compile(
    r"\b(?:no|not|without|negative\s+for|free\s+of|absence\s+of|absent|nor|neither|"
    r"resolution\s+of|resolved)\b",
    re.IGNORECASE,
)
_NEG_STOP_RE = re.compile(
    r"\b(?:but|however|although|though|except|apart\s+from|aside\s+from|other\s+than|whereas|"
    r"while|which|who|yet|showing|shows|associated\s+with|with|is|are|was|were|there|seen|noted)\b"
    r"|[;:()/]",
    re.IGNORECASE,
)
_POST_NEG_RE = re.compile(
    r"^[\s,]*(?:(?:is|are|was|were|has|have|been)\s+){0,2}(?:(?:not|no\s+longer)\s+"
    r"(?:\w+ly\s+)?(?:seen|identified|visuali[sz]ed|present|demonstrated|appreciated|evident|"
    r"noted|detected|visible)|absent|resolved|removed)\b",
    re.IGNORECASE,
)
_HYPOTHETICAL_RE = re.compile(
    r"\b(?:obscur\w*|rule\s+out|r/o|to\s+exclude|evaluate\s+for|screening\s+for)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"\w+")


def _is_negated(text: str, start: int, end: int, max_words: int = 12) -> bool:
    """True when ``text[start:end]`` is negated by a cue before it (same clause) or after it."""
    window_start = max(0, start - 160)
    cue = None
    for m in _NEG_CUE_RE.finditer(text, window_start, start):
        cue = m
    if cue is not None:
        between = text[cue.end() : start]
        if not _NEG_STOP_RE.search(between) and len(_WORD_RE.findall(between)) <= max_words:
            return True
    return bool(_POST_NEG_RE.search(text[end : end + 60]))


def _is_hypothetical(text: str, start: int) -> bool:
    window = text[max(0, start - 40) : start]
    return bool(_HYPOTHETICAL_RE.search(window))


@sentence_cache
def _clause_breaks(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Starts and ends of the clause breaks of a sentence (one scan; ascending, disjoint)."""
    spans = [m.span() for m in _CLAUSE_BREAK_RE.finditer(text)]
    return tuple(a for a, _ in spans), tuple(b for _, b in spans)


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The clause around ``text[start:end]``, cut at commas, semicolons and conjunctions:
    from the end of the last break ending at or before ``start`` to the first break starting
    at or after ``end`` (found by bisection, so many mentions per sentence stay cheap)."""
    starts, ends = _clause_breaks(text)
    i = bisect_right(ends, start) - 1
    left = ends[i] if i >= 0 else 0
    j = bisect_left(starts, end)
    right = starts[j] if j < len(starts) else len(text)
    return left, right


# --------------------------------------------------------------------------------------------
# BI-RADS
# --------------------------------------------------------------------------------------------
_CAT = (
    r"(?P<cat>[0-6]|vi|iv|v|iii|ii|i)"
    r"(?:-?(?P<sub>[abc])\b|\s(?P<sub2>[abc])(?=\s*(?:[:).,;/\-]|$)))?"
)
_BIRADS_KW = r"bi[\s\-_]?rads?(?:®|\(r\))?"
_BIRADS_NUM_RE = re.compile(
    r"(?<![a-z])(?:acr[\s\-]+)?" + _BIRADS_KW + r"(?![a-z])"
    r"(?:\s*(?:final\s+)?(?:assessment|score))?\s*(?:category|cat\.?|categ\.?)?\s*[:#=\-–]?\s*"
    r"(?:category\s*)?" + _CAT + r"(?![0-9])",
    re.IGNORECASE,
)
_CATEGORY_RE = re.compile(
    r"\b(?:(?:final\s+)?assessment\s*(?:category)?\s*[:\-]|categor(?:y|ies)\s*[:#]?)\s*"
    + _CAT
    + r"(?![0-9a-z])",
    re.IGNORECASE,
)
_SIDED_BIRADS_RE = re.compile(
    _BIRADS_KW + r"(?:\s*category)?\s*[:\-]?\s*"
    r"(?P<s1>right|left|rt|lt|r|l)\s*[:=\-]?\s*(?P<c1>[0-6][abc]?)\b\s*[,;/]?\s*(?:and\s+)?"
    r"(?P<s2>right|left|rt|lt|r|l)\s*[:=\-]?\s*(?P<c2>[0-6][abc]?)\b",
    re.IGNORECASE,
)
# "ASSESSMENT: 4B - ..." where "ASSESSMENT:" was read as the section header.
_AFTER_HEADER_RE = re.compile(r"\b(?:assessment|bi[\s\-_]?rads|category)\s*:\s*$", re.IGNORECASE)
_BARE_CAT_RE = re.compile(r"^" + _CAT + r"(?![0-9a-z])\s*(?:[:\-–(,.]|$)", re.IGNORECASE)
_JOINED_RE = re.compile(r"\s*\$\s*([0-6])([abc])?(?![0-9])", re.IGNORECASE)
_PRIOR_RE = re.compile(
    r"\b(?:prior|previous(?:ly)?|was|were|had\s+been|formerly|originally|from|last)\W+"
    r"(?:\w+\W+){0,3}$",
    re.IGNORECASE,
)
_DENSITY_NEAR_RE = re.compile(r"(?:density|composition|dense)\W+(?:\w+\W+){0,3}$", re.IGNORECASE)
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6"}

_BIRADS_WORDS: tuple[tuple[str, str], ...] = (
    ("6", r"known\s+(?:biopsy[\s\-]+)?(?:proven|confirmed)\s+(?:malignancy|cancer|carcinoma)"),
    ("5", r"highly\s+(?:suggestive|suspicious)\s+(?:of|for)\s+malignancy"),
    ("4C", r"high\s+suspicion\s+(?:of|for)\s+malignancy"),
    ("4B", r"moderate\s+suspicion\s+(?:of|for)\s+malignancy"),
    ("4A", r"low\s+suspicion\s+(?:of|for)\s+malignancy"),
    ("4", r"suspicious\s+(?:abnormality|(?:of|for)\s+malignancy)"),
    ("0", r"incomplete\b|needs?\s+(?:additional|further)\s+imaging"),
    ("3", r"probably\s+benign"),
    (
        "2",
        r"benign\s+(?:findings?|mammogram|mammographic\s+findings|exam\w*|study)\b"
        r"|(?:^|:)\s*benign\W*$",
    ),
    (
        "1",
        r"(?:negative|normal)\s+(?:(?:bilateral|screening|diagnostic|digital|breast)\s+)*"
        r"(?:mammogram|mammography|exam\w*|study)\b|(?:^|:)\s*negative\W*$",
    ),
)
_BIRADS_WORD_RE = re.compile(
    "|".join(f"(?P<w{i}>{pat})" for i, (_v, pat) in enumerate(_BIRADS_WORDS)),
    re.IGNORECASE,
)


def _category(cat: str, sub: str | None) -> str:
    c = _ROMAN.get(cat.lower(), cat)
    if c == "4" and sub:
        return "4" + sub.upper()
    return c


@dataclass(frozen=True)
class _Stated:
    """One value stated in one sentence, at ``pos`` (offset in the sentence)."""

    value: str
    pos: int


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    """Whether ``pos`` lies in one of ``spans`` (ascending, disjoint)."""
    i = bisect_right(spans, (pos, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]


@sentence_cache
def _birads_in(text: str, use_words: bool, after_header: bool = False) -> tuple[_Stated, ...]:
    """BI-RADS categories stated in one sentence (numbers first; words only without numbers).

    ``after_header``: the sentence follows an "Assessment:" header, so a bare leading category
    ("4B - moderate suspicion") is the assessment.
    """
    found: list[_Stated] = []
    if after_header and (m := _BARE_CAT_RE.match(text)) and m.group("cat").lower() not in _ROMAN:
        found.append(_Stated(_category(m.group("cat"), m.group("sub") or m.group("sub2")), 0))
    # spans already read, as ascending disjoint lists: the sided statements, then what each
    # regex took (one regex's matches never overlap each other)
    taken: list[list[tuple[int, int]]] = [[m.span() for m in _SIDED_BIRADS_RE.finditer(text)]]
    for rx in (_BIRADS_NUM_RE, _CATEGORY_RE):
        taken.append([])
        for m in rx.finditer(text):
            if any(_inside(spans, m.start()) for spans in taken):
                continue
            prefix = text[max(0, m.start() - 50) : m.start()]
            if _PRIOR_RE.search(prefix):
                continue
            if rx is _CATEGORY_RE and _DENSITY_NEAR_RE.search(prefix):
                continue
            if rx is _CATEGORY_RE and m.group("cat").lower() in _ROMAN:
                continue  # "category i" is too ambiguous without the BI-RADS keyword
            taken[-1].append(m.span())
            found.append(
                _Stated(_category(m.group("cat"), m.group("sub") or m.group("sub2")), m.start())
            )
            pos = m.end()
            while (j := _JOINED_RE.match(text, pos)) is not None:
                found.append(_Stated(_category(j.group(1), j.group(2)), m.start()))
                pos = j.end()
    if found or not use_words:
        return tuple(found)
    for m in _BIRADS_WORD_RE.finditer(text):
        if _is_negated(text, m.start(), m.end(), max_words=4):
            continue
        idx = int(m.lastgroup[1:])  # type: ignore[index]
        found.append(_Stated(_BIRADS_WORDS[idx][0], m.start()))
    return tuple(found)


@sentence_cache
def _sided_birads_in(text: str) -> tuple[tuple[frozenset[str], _Stated], ...]:
    out = []
    for m in _SIDED_BIRADS_RE.finditer(text):
        for s, c in (("s1", "c1"), ("s2", "c2")):
            cat = m.group(c)
            out.append(
                (_header_sides(m.group(s)), _Stated(_category(cat[0], cat[1:] or None), m.start(c)))
            )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Density
# --------------------------------------------------------------------------------------------
_DENSITY_LETTER_RE = re.compile(
    r"\b(?P<kw>acr|density|composition|(?:density|composition)\s+(?:type|category|grade|pattern))"
    r"(?:\s+(?:breast\s+)?(?:density|composition|type|category|grade|pattern))*"
    r"\s*[:\-]?\s*\(?(?P<letter>[a-d])(?![\w\-])(?!\s+(?:\w+\s+)?(?:mass|cm|mm|lesion))",
    re.IGNORECASE,
)
_DENSITY_LETTER_BEFORE_RE = re.compile(
    r"\b(?:acr|type|category|grade)\s*[:\-]?\s*(?P<letter>[a-d])\s+(?:breast\s+)?"
    r"(?:density|composition)\b",
    re.IGNORECASE,
)
_DENSITY_NUMBER_RE = re.compile(
    r"\b(?:density|composition)\s*[:\-]?\s*(?:acr\s*)?(?:type|category|grade|pattern)?\s*[:\-]?\s*"
    r"(?P<num>[1-4])\b(?!\s*(?:cm|mm|o'?clock))"
    r"|\bacr\s*(?:type|density|pattern)\s*[:\-]?\s*(?P<num2>[1-4])\b",
    re.IGNORECASE,
)
_DENSITY_PHRASES: tuple[tuple[str, str], ...] = (
    (
        "a",
        r"(?:almost\s+entirely|predominantly|mostly|largely|entirely)\s+fat(?:ty)?\b"
        r"|fatty(?:[\s\-]+replaced)?\s+(?:breasts?|breast\s+tissue|parenchyma)\b"
        r"|breasts?\s+(?:are|is)\s+fatty\b",
    ),
    ("b", r"scattered\s+(?:areas\s+of\s+)?fibro[\s\-]?glandular"),
    ("c", r"heterogene(?:ous|ously)\s+dense"),
    ("d", r"extremely\s+dense"),
)
_DENSITY_PHRASE_RE = re.compile(
    "|".join(f"(?P<{v}>{pat})" for v, pat in _DENSITY_PHRASES), re.IGNORECASE
)
_DENSITY_FINDING_WORDS = re.compile(
    r"(?:asymmetr\w*|increased|high|equal|low|fat|soft\s+tissue|mixed|nodular|focal|tubular)\W*$",
    re.IGNORECASE,
)


@sentence_cache
def _density_in(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for m in _DENSITY_LETTER_RE.finditer(text):
        if m.group("kw").lower().startswith("density") and _DENSITY_FINDING_WORDS.search(
            text[max(0, m.start() - 25) : m.start()]
        ):
            continue
        out.append(m.group("letter").lower())
    out.extend(m.group("letter").lower() for m in _DENSITY_LETTER_BEFORE_RE.finditer(text))
    for m in _DENSITY_NUMBER_RE.finditer(text):
        out.append("abcd"[int(m.group("num") or m.group("num2")) - 1])
    for m in _DENSITY_PHRASE_RE.finditer(text):
        if not _is_negated(text, m.start(), m.end(), max_words=3):
            out.append(m.lastgroup or "")
    return tuple(v for v in out if v)


# --------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------
_MASS_RE = re.compile(
    r"(?<!non\s)(?<!non-)(?<!non)\b(?:mass(?:es)?(?!\s+effect)|nodules?|cysts?|fibroadenomas?|"
    r"tumou?rs?)\b",
    re.IGNORECASE,
)
_CALC_RE = re.compile(
    r"\b(?P<prefix>mi?c?r?o|mirco|ma?c?r?o|marco)?[\s\-]?cal(?:c)?i?fi?cations?\b"
    r"|\bcalcific\s+(?:foci|focus|densit(?:y|ies)|deposits?)\b|\bcalcified\b|\bmicrocalcs?\b"
    r"|\bcalcs\b|\bmilk\s+of\s+calcium\b",
    re.IGNORECASE,
)
_CALC_SUSPICIOUS_RE = re.compile(
    r"\b(?:pleomorphic|fine[\s\-]+linear|linear|branching|amorphous|clustered|clusters?|grouped|"
    r"segmental|suspicious|malignant|worrisome|heterogeneous)\b",
    re.IGNORECASE,
)
_CALC_BENIGN_RE = re.compile(
    r"\b(?:benign|coarse|vascular|popcorn|rim|eggshell|egg[\s\-]shell|dystrophic|secretory|"
    r"rod[\s\-]like|dermal|punctate|lucent[\s\-]cent\w+|milk\s+of\s+calcium|oil\s+cysts?|"
    r"fat\s+necrosis|involut\w+)\b",
    re.IGNORECASE,
)
_CALC_PHRASE_STOP_RE = re.compile(
    r"[,;.]|\b(?:and|with|margins?|is|are|mass(?:es)?|density|distortion|asymmetr\w*|showing)\b",
    re.IGNORECASE,
)
_ASYM_RE = re.compile(r"\basymmetr(?:y|ies|ic|ical|ial|ically)\b|\bneo-?density\b", re.IGNORECASE)
_DISTORTION_RE = re.compile(
    r"\barchitectur\w*\s+distortions?\b|\bdistortions?\b|\bdistorted\s+(?:architecture|parenchyma)\b",
    re.IGNORECASE,
)
_NODE_RE = re.compile(
    r"\b(?P<imln>intra[\s\-]?mammary\s+(?:lymph\s+)?nodes?|imlns?)\b"
    r"|\b(?P<lad>(?:lymph)?adenopath(?:y|ies))\b"
    r"|\b(?P<node>(?:lymph\s*)?nodes?)\b",
    re.IGNORECASE,
)
_NODE_ABNORMAL_RE = re.compile(
    r"\b(?:enlarg\w*|prominent|abnormal|suspicious|pathologic\w*|matted|bulky|thicken\w*|"
    r"malignant|metasta\w*|rounded|hyperdense|dense|loss\s+of\s+(?:the\s+)?(?:fatty\s+)?hil\w*|"
    r"effaced|replaced|large)\b",
    re.IGNORECASE,
)
_SKIN_RE = re.compile(
    r"\b(?:skin|cutaneous)\s+(?:and\s+nipple\s+)?(?:thicken\w*|thickness|retraction|dimpl\w*|"
    r"changes?|involvement|edema|oedema|ulcerat\w*|tethering)\b"
    r"|\bthicken\w*\s+(?:of\s+(?:the\s+)?)?skin\b"
    r"|\bnipple\s+(?:retraction|inversion|changes?|retracted|inverted|flattening)\b"
    r"|\b(?:retract\w*|invert\w*)\s+nipples?\b"
    r"|\bpeau\s+d.orange\b"
    r"|\bskin(?:\s+and\s+nipples?)?\s+(?:is|are|appears?)\s+(?:normal|unremarkable|intact)\b",
    re.IGNORECASE,
)
_SKIN_POSITIVE_RE = re.compile(r"\b(?:increased|thicken\w*|abnormal|diffuse)\b", re.IGNORECASE)
_SKIN_NORMAL_RE = re.compile(r"\b(?:normal|unremarkable|intact)\b", re.IGNORECASE)
_SURGERY_RE = re.compile(
    r"\bpost[\s\-]?(?:operative|surgical|lumpectomy|mastectomy|biopsy|radiation|radiotherapy|"
    r"treatment)\b|\bpostoperative\b"
    # "status post" counts unless what follows is systemic treatment (leaves no local change)
    r"|\b(?:status[\s\-]+post|s/p)\b(?!\W+(?:\w+\W+)?(?:neo-?adjuvant|chemo\w*|hormon\w*|systemic))"
    r"|\b(?:lumpectomy|mastectomy|quadrantectomy|segmentectomy|reduction\s+mammoplasty)\b"
    r"|\b(?:prior|previous)\s+(?:surgery|excision|surgical\s+excision)\b"
    r"|\b(?:operative|surgical|biopsy)\s+(?:scar|bed|site|clips?|cavity|changes?)\b"
    r"|\bscars?\b|\bclips?\b|\bseroma\b|\bradiation\s+changes?\b",
    re.IGNORECASE,
)


def _clause_text(text: str, start: int, end: int) -> tuple[str, str]:
    """Text before and after a mention inside its noun phrase (cut at phrase boundaries)."""
    before = text[max(0, start - 60) : start]
    cut = None
    for m in _CALC_PHRASE_STOP_RE.finditer(before):
        cut = m
    if cut is not None:
        before = before[cut.end() :]
    after = text[end : end + 50]
    m2 = re.search(r"[.;]|\b(?:and|but|which|while|associated)\b", after, re.IGNORECASE)
    if m2:
        after = after[: m2.start()]
    return before, after


def _descriptor_hits(rx: re.Pattern[str], fragment: str) -> bool:
    for m in rx.finditer(fragment):
        lead = fragment[max(0, m.start() - 20) : m.start()]
        if not re.search(r"\b(?:no|not|without)\b(?:\W+\w+){0,2}\W*$", lead, re.IGNORECASE):
            return True
    return False


def _calc_value(text: str, m: re.Match[str]) -> str:
    before, after = _clause_text(text, m.start(), m.end())
    phrase = before + " " + after
    if _descriptor_hits(_CALC_SUSPICIOUS_RE, phrase):
        return "suspicious"
    prefix = (m.groupdict().get("prefix") or "").lower()
    if prefix.startswith("ma") or _descriptor_hits(_CALC_BENIGN_RE, phrase):
        return "benign"
    if m.group(0).lower().startswith("milk"):
        return "benign"
    return "present"


def _asym_value(text: str, m: re.Match[str]) -> str:
    if m.group(0).lower().startswith("neo"):
        return "developing"
    before = text[max(0, m.start() - 30) : m.start()].lower()
    for word in ("developing", "focal", "global"):
        if re.search(rf"\b{word}\b", before):
            return word
    return "present"


def _node_value(text: str, m: re.Match[str]) -> str:
    if m.group("imln") or m.group("lad"):
        return "present"
    a, b = _clause_bounds(text, m.start(), m.end())
    # keep "not enlarged" / "normal in size" from counting as abnormal
    window = text[max(a, m.start() - 40) : min(b, m.end() + 40)]
    for q in _NODE_ABNORMAL_RE.finditer(window):
        lead = window[max(0, q.start() - 15) : q.start()]
        if not re.search(r"\b(?:not|non|no)\W*$", lead, re.IGNORECASE):
            return "present"
    return "absent"


def _skin_value(text: str, m: re.Match[str]) -> str | None:
    mention = m.group(0).lower()
    before = text[max(0, m.start() - 20) : m.start()]
    if re.search(r"\b(?:is|are|appears?)\s+(?:normal|unremarkable|intact)\b", mention):
        return "absent"
    if "thickness" in mention or "changes" in mention or "change" in mention:
        if _SKIN_NORMAL_RE.search(before) or _SKIN_NORMAL_RE.search(text[m.end() : m.end() + 25]):
            return "absent"
        if _SKIN_POSITIVE_RE.search(before) or "change" in mention:
            return "present"
        return None
    if _SKIN_NORMAL_RE.search(before):
        return "absent"
    return "present"


@dataclass(frozen=True)
class _FieldRule:
    field: str
    pattern: re.Pattern[str]
    kind: str  # presence | calcifications | asymmetry

    def value(self, text: str, m: re.Match[str]) -> str | None:
        if self.field == "calcifications":
            return _calc_value(text, m)
        if self.field == "asymmetry":
            return _asym_value(text, m)
        if self.field == "lymph_nodes":
            return _node_value(text, m)
        if self.field == "skin_nipple_changes":
            return _skin_value(text, m)
        return "present"


_FIELD_RULES: tuple[_FieldRule, ...] = (
    _FieldRule("mass", _MASS_RE, "presence"),
    _FieldRule("calcifications", _CALC_RE, "calcifications"),
    _FieldRule("asymmetry", _ASYM_RE, "asymmetry"),
    _FieldRule("architectural_distortion", _DISTORTION_RE, "presence"),
    _FieldRule("lymph_nodes", _NODE_RE, "presence"),
    _FieldRule("skin_nipple_changes", _SKIN_RE, "presence"),
    _FieldRule("post_surgical_change", _SURGERY_RE, "presence"),
)
_FIELD_KIND = {r.field: r.kind for r in _FIELD_RULES}


@sentence_cache
def _field_mentions(text: str) -> tuple[tuple[str, str, int, int], ...]:
    """(field, value, start, end) of every finding mention of a sentence, in rule order."""
    out: list[tuple[str, str, int, int]] = []
    for rule in _FIELD_RULES:
        for m in rule.pattern.finditer(text):
            if _is_hypothetical(text, m.start()):
                continue
            if _is_negated(text, m.start(), m.end()):
                value: str | None = "absent"
            else:
                value = rule.value(text, m)
            if value is None:
                continue
            out.append((rule.field, value, m.start(), m.end()))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Value:
    """A value stated for some breasts by one sentence; ``sided`` when the side was stated."""

    value: str
    sides: frozenset[str]
    sided: bool
    sentence: Sentence


class _Laterality:
    """Where the side of an unsided statement comes from, computed once per report."""

    def __init__(self, doc: Document) -> None:
        self.scopes, self.header_lines = _header_scopes(doc)
        self._scope_index = _ScopeIndex(self.scopes)
        # header-only lines are disjoint and in text order (matches of one regex)
        self._header_line_starts = [a for a, _ in self.header_lines]
        title: frozenset[str] = frozenset()
        named: frozenset[str] = frozenset()
        per_section: dict[str, frozenset[str]] = {}
        for sent in doc.sentences:
            if self.is_header_line(sent) or sent.section in _SKIP_SECTIONS:
                continue
            sides = _union(_current(_side_mentions(sent.text)))
            if sent.section in ("preamble", "technique") and _EXAM_WORD_RE.search(sent.text):
                title |= sides
            else:
                named |= sides
                per_section[sent.section] = per_section.get(sent.section, frozenset()) | sides
        for s in self.scopes:
            named |= s.sides
        self.title = title
        self.named = named if len(named) == 1 else BOTH
        self.section_one_side = {k: v for k, v in per_section.items() if len(v) == 1}

    def is_header_line(self, sent: Sentence) -> bool:
        # only the last header line starting at or before the sentence can hold it
        i = bisect_right(self._header_line_starts, sent.start) - 1
        return i >= 0 and sent.end <= self.header_lines[i][1]

    def scope(self, sent: Sentence) -> _Scope | None:
        return self._scope_index.at(sent.start)

    def finding_default(self, sent: Sentence) -> frozenset[str]:
        """Unsided finding: the exam's coverage (a bilateral exam's "no mass" covers both)."""
        return self.title or self.section_one_side.get(sent.section) or self.named

    def assessment_default(self, sent: Sentence) -> frozenset[str]:
        """Unsided assessment: the one side its section names (it assesses that finding)."""
        return self.section_one_side.get(sent.section) or self.title or self.named


@dataclass(frozen=True)
class _SentenceSides:
    """The side of a mention: named in the sentence, else inherited (header scope or the
    sentence it continues), else the report default (then it is not ``sided``)."""

    index: _SideIndex
    inherited: frozenset[str] | None

    def resolve(self, start: int, end: int, default: frozenset[str]) -> tuple[frozenset[str], bool]:
        sides = self.index.sides_at(start, end)
        if sides:
            return sides, True
        if self.inherited is not None:
            return self.inherited, True
        return default, False


class MammoRuleExtractor(RuleExtractor):
    """BI-RADS, ACR density and findings per breast from mammography report text."""

    schema_name = "mammo"
    rules_version = RULES_VERSION

    def extract_doc(self, doc: Document) -> tuple[Labels, EvidenceMap]:
        lat = _Laterality(doc)
        sentences = [
            s
            for s in doc.sentences
            if s.section not in _SKIP_SECTIONS and not lat.is_header_line(s)
        ]
        has_impression = any(s.section == "impression" for s in sentences)
        after_header = {
            s.start
            for s in sentences
            if _AFTER_HEADER_RE.search(doc.text[max(0, s.start - 30) : s.start])
        }
        any_number = any(_birads_in(s.text, False, s.start in after_header) for s in sentences)
        birads: list[_Value] = []
        density: list[tuple[str, Sentence]] = []
        findings: dict[str, list[_Value]] = {f: [] for f in _FINDING_FIELDS}
        # the side of the last sentence that named one, and whether it ended with ";"
        last_sided: tuple[str, frozenset[str]] | None = None
        after_semicolon = False
        for sent in sentences:
            text = sent.text
            scope = lat.scope(sent)
            inherited = scope.sides if scope else None
            # in a per-breast report the header's side holds: sentences do not override it
            index = _NO_SIDES if scope and scope.report else _side_index(text)
            mentions = index.mentions
            continues = after_semicolon or bool(_CONTINUATION_RE.search(text))
            if (
                inherited is None
                and not mentions
                and continues
                and last_sided
                and last_sided[0] == sent.section
            ):
                inherited = last_sided[1]
            elif mentions:
                last_sided = (sent.section, _union(mentions))
            else:
                last_sided = None
            after_semicolon = text.endswith(";")
            where = _SentenceSides(index, inherited)
            overall = bool(_OVERALL_RE.search(text))
            for sides, stated in _sided_birads_in(text):
                birads.append(_Value(stated.value, sides, True, sent))
            use_words = not any_number and (sent.section == "impression" or not has_impression)
            for stated in _birads_in(text, use_words, sent.start in after_header):
                sides, sided = where.resolve(
                    stated.pos, stated.pos + 1, lat.assessment_default(sent)
                )
                if overall:  # an exam-level statement: every breast the exam covers
                    sides, sided = lat.title or BOTH, False
                birads.append(_Value(stated.value, sides, sided, sent))
            density.extend((v, sent) for v in _density_in(text))
            for field, value, start, end in _field_mentions(text):
                sides, sided = where.resolve(start, end, lat.finding_default(sent))
                findings[field].append(_Value(value, sides, sided, sent))
        labels = self.schema.empty_labels()
        evidence: EvidenceMap = {}
        _assign_birads(birads, labels, evidence)
        _assign_density(density, labels, evidence)
        for field, values in findings.items():
            _assign_finding(field, _place_restatements(values), labels, evidence)
        return labels, evidence


class _SideIndex:
    """The side mentions of one sentence indexed for :meth:`sides_at` (O(log n) a query)."""

    __slots__ = ("_history", "_left", "_right", "ends", "mentions", "only", "starts", "text")

    def __init__(self, text: str, mentions: Sequence[_SideMention]) -> None:
        self.text = text
        # history phrases (disjoint, in text order) and the side each names
        self._history = [(m.history, m.sides) for m in mentions if m.history is not None]
        mentions = _current(mentions)
        self.mentions = mentions  # one regex's matches: disjoint, in text order
        kinds = {m.sides for m in mentions}
        self.only = next(iter(kinds)) if len(kinds) == 1 else None
        self.starts = [m.start for m in mentions]
        self.ends = [m.end for m in mentions]
        # prefix counts of mentions naming each side, for the union over a range of mentions
        self._left, self._right = [0], [0]
        for m in mentions:
            self._left.append(self._left[-1] + (LEFT in m.sides))
            self._right.append(self._right[-1] + (RIGHT in m.sides))

    def sides_at(self, start: int, end: int) -> frozenset[str]:
        """Sides named in the sentence for the mention at ``start:end`` (empty if none): all
        of them when they agree, else those in the mention's clause, else the nearest one. A
        mention inside a history phrase takes that phrase's side ("s/p right lumpectomy"); the
        phrase's side is nobody else's."""
        for (a, b), sides in self._history:
            if a <= start and end <= b:
                return sides
        if not self.mentions:
            return frozenset()
        if self.only is not None:
            return self.only
        a, b = _clause_bounds(self.text, start, end)
        i, j = bisect_left(self.starts, a), bisect_right(self.ends, b)  # inside [a, b)
        if i < j:
            left = self._left[j] > self._left[i]
            right = self._right[j] > self._right[i]
            return frozenset(side for side, on in ((LEFT, left), (RIGHT, right)) if on)
        # nearest by min(|start distance|, |end distance|), the first one on ties: the
        # minimum lies beside where ``start`` falls among the starts or ``end`` among the ends
        candidates: set[int] = set()
        for k in (bisect_left(self.starts, start), bisect_left(self.ends, end)):
            candidates.update(x for x in (k - 1, k) if 0 <= x < len(self.mentions))

        def distance(x: int) -> tuple[int, int]:
            m = self.mentions[x]
            return min(abs(m.start - start), abs(m.end - end)), x

        return self.mentions[min(candidates, key=distance)].sides


@sentence_cache
def _side_index(text: str) -> _SideIndex:
    return _SideIndex(text, _side_mentions(text))


_NO_SIDES = _SideIndex("", ())


def _place_restatements(values: Sequence[_Value]) -> list[_Value]:
    """An unsided positive mention of a finding the report places on a side elsewhere (the
    impression restating the findings) belongs to that side, not to the default sides."""
    placed = _union(_SideMention(0, 0, v.sides) for v in values if v.sided and v.value != "absent")
    if not placed:
        return list(values)
    return [
        _Value(v.value, placed, False, v.sentence)
        if not v.sided and v.value != "absent" and v.sentence.section == "impression"
        else v
        for v in values
    ]


def _dedup_evidence(sentences: Iterable[Sentence]) -> list[Evidence]:
    seen: set[int] = set()
    out: list[Evidence] = []
    for s in sorted(sentences, key=lambda s: s.start):
        if s.start not in seen:
            seen.add(s.start)
            out.append(evidence_of(s))
    return out


def _assign_birads(values: Sequence[_Value], labels: Labels, evidence: EvidenceMap) -> None:
    per_side: dict[str, str | None] = {}
    for side in SIDES:
        sided = [v for v in values if side in v.sides and v.sided]
        pool = sided or [v for v in values if side in v.sides]
        best = highest_birads(v.value for v in pool)
        per_side[side] = best
        if best is not None:
            evidence[f"birads.{side}"] = _dedup_evidence(
                v.sentence for v in pool if v.value == best
            )
    labels["birads"] = {side: per_side[side] for side in labels["birads"]}
    exam = highest_birads(
        [*(v for v in per_side.values() if v), *(v.value for v in values if not v.sided)]
    )
    labels["exam_birads"] = exam
    if exam is not None:
        evidence["exam_birads"] = _dedup_evidence(v.sentence for v in values if v.value == exam)


def _assign_density(
    values: Sequence[tuple[str, Sentence]], labels: Labels, evidence: EvidenceMap
) -> None:
    if not values:
        return
    best = max(v for v, _ in values)
    labels["density"] = best
    evidence["density"] = _dedup_evidence(s for v, s in values if v == best)


def _assign_finding(
    field: str, values: Sequence[_Value], labels: Labels, evidence: EvidenceMap
) -> None:
    priority = _VALUE_PRIORITY[_FIELD_KIND[field]]
    for side in SIDES:
        pool = [v for v in values if side in v.sides]
        if not pool:
            continue
        best = max(pool, key=lambda v: priority[v.value]).value
        labels[field][side] = best
        evidence[f"{field}.{side}"] = _dedup_evidence(v.sentence for v in pool if v.value == best)
