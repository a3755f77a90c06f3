"""Rules for coronary CT angiography reports (schema ccta@1, CAD-RADS 2.0).

How a report is read, clause by clause (sentences split at "," and ";" outside vessel lists):

* Vessel mentions ("proximal LAD", "first obtuse marginal", "pRCA") and grade mentions
  ("50-69%", "moderate", "occluded", "no plaque", "non-diagnostic") are found in each clause.
  Adjacent vessels ("LAD, LCx and RCA") form one group that shares a grade. A clause that opens
  with a vessel gives each grade to the group before it ("RCA: mild stenosis"), unless the grade
  is followed by "stenosis of the <vessel>"; a clause that opens with a grade gives it to the
  group after it ("90% stenosis of the mid RCA").
* A clause without a vessel borrows the last vessel of its sentence ("LM: normal caliber, no
  plaque"), or of the per-vessel line it sits in ("RCA: A stent ... There is severe in-stent
  restenosis"). A negative clause about the coronaries as a whole ("No plaque elsewhere",
  "No coronary artery disease") sets LM, LAD, LCx and RCA to 0 where nothing else graded them.
* Bypass grafts ("LIMA to LAD", "SVG-OM") are one ``Graft`` mention, so their target vessel is
  not read as a native vessel. Branches without a schema key (D3, OM3, acute marginal) count
  for the CAD-RADS category only.

Grading conventions (see :mod:`extractors.rules.cadrads` for the CAD-RADS arithmetic):

* Words: minimal 1-24, mild 25-49, moderate 50-69, severe / high-grade / critical / subtotal
  70-99, occluded / total occlusion / CTO 100; "normal", "patent", "no plaque", "no
  (significant) stenosis", "no in-stent restenosis" 0. "Moderate to severe" takes the higher.
* Percentages: "<25%" is 24, "up to 40%" is 40; a range takes the band of its maximal estimate,
  except that "50-70%" / "25-50%" mean the band written loosely (50-69 / 25-49).
* Plaque (or in-stent restenosis, or luminal irregularity) without a grade is 1-24: any plaque
  is at least minimal disease. A patent stent without restenosis is 0.
* A vessel with a non-diagnostic segment is ``non_diagnostic`` unless a diagnostic segment
  reaches 50% (then the grade stands and the modifier N is set).

Category: the CAD-RADS category stated in the report wins (impression first; indication and
comparison sections, and "prior ... CAD-RADS" phrases, are skipped); otherwise it is derived.
A stated "CAD-RADS 4" without its letter takes 4A or 4B from the grades, and 4B also when the
report affirms obstructive left main or three-vessel disease in words ("severe three-vessel
coronary artery disease", "significant left main disease", "severe stenoses in all three
coronary arteries"; not mild, moderate or non-obstructive ones, not prior ones); without a
stated category those words raise a derived 0-4A (or N) to 4B.
Modifiers are the union of those stated after the category ("4A/P2/HRP/S") and those found:
N any non-diagnostic segment or study; HRP "high-risk plaque" or two or more of positive
remodeling, low-attenuation plaque, napkin-ring sign, spotty calcification (CAD-RADS 2.0);
I ischemia: FFRct <= 0.75, "I+", or affirmed ischemia by CT-FFR/perfusion (I- and the
borderline I+/- are not I); S stent; G bypass graft or CABG; E coronary anomaly, aneurysm,
fistula, dissection or vasculitis (myocardial bridging is not an exception). Plaque burden:
stated P0-P4, else "mild/moderate/severe/extensive plaque burden", else the calcium score,
else the segment involvement score, else P0 when the category is 0, else null.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from extractors.extract.base import EvidenceMap, Labels
from extractors.results import Evidence
from extractors.rules.base import RuleExtractor, evidence_of
from extractors.rules.cadrads import (
    NON_DIAGNOSTIC,
    NOT_MENTIONED,
    TERRITORY,
    derive_cad_rads,
    grade_of_percent,
    grade_of_range,
    grade_rank,
    max_grade,
    plaque_burden_from_cac,
    plaque_burden_from_sis,
    plaque_burden_from_words,
    roll_up,
)
from extractors.rules.patterns import PatternSet, sentence_cache
from extractors.rules.scope import SentenceScope, analyze
from extractors.schemas import SchemaSpec
from extractors.text.document import Document
from extractors.text.sentences import Sentence

MAIN_VESSELS = ("LM", "LAD", "LCx", "RCA")
# Sections whose statements describe the past or the question, not this study's findings.
SKIPPED_SECTIONS = frozenset({"indication", "comparison"})

_B = r"(?<![\w-])"  # start of a word (a hyphen glues words: "SVG-OM", "in-stent")
_E = r"(?![\w])"

# --- vessels ---------------------------------------------------------------------------------
_SEG = r"(?:[pmd])?"  # pLAD, mRCA, dCx
_VESSEL_PATTERNS: list[tuple[str, tuple[str, ...]]] = [
    (r"left\s+main(?:\s+coronary)?(?:\s+(?:artery|trunk|stem))?|LMCA|LMS|LM", ("LM",)),
    (r"left\s+anterior\s+descending(?:\s+(?:coronary\s+)?artery)?|" + _SEG + r"LAD", ("LAD",)),
    (r"(?:left\s+)?circumflex(?:\s+(?:coronary\s+)?artery)?|" + _SEG + r"L?CX", ("LCx",)),
    (r"right\s+coronary(?:\s+artery)?|" + _SEG + r"RCA", ("RCA",)),
    (
        r"first\s+and\s+second\s+diagonal(?:\s+branch(?:es)?)?|diagonal\s+branches|diagonals",
        ("D1", "D2"),
    ),
    (r"(?:first|1st)\s+diagonal(?:\s+branch)?|D-?1|diagonal(?:\s+branch)?(?:\s+1)?", ("D1",)),
    (r"(?:second|2nd)\s+diagonal(?:\s+branch)?|D-?2|diagonal(?:\s+branch)?\s+2", ("D2",)),
    (r"(?:third|3rd)\s+diagonal(?:\s+branch)?|D-?3", ("D3",)),
    (r"acute\s+marginal(?:\s+branch(?:es)?)?", ("AM",)),
    (
        r"first\s+and\s+second\s+(?:obtuse\s+)?marginal(?:\s+branch(?:es)?)?|"
        r"(?:obtuse\s+)?marginal\s+branches|obtuse\s+marginals|OM\s+branches|OMs",
        ("OM1", "OM2"),
    ),
    (
        r"(?:first|1st)\s+(?:obtuse\s+)?marginal(?:\s+branch)?|OM-?1|"
        r"obtuse\s+marginal(?:\s+(?:branch|artery))?(?:\s+1)?|OM",
        ("OM1",),
    ),
    (
        r"(?:second|2nd)\s+(?:obtuse\s+)?marginal(?:\s+branch)?|OM-?2|obtuse\s+marginal\s+2",
        ("OM2",),
    ),
    (r"(?:third|3rd)\s+(?:obtuse\s+)?marginal(?:\s+branch)?|OM-?3", ("OM3",)),
    (r"ramus(?:\s+intermedius|\s+medianus)?|intermediate\s+(?:branch|artery)|RI", ("RI",)),
    (r"posterior\s+descending(?:\s+(?:coronary\s+)?artery)?|[RL]-?PDA|PDA", ("PDA",)),
    (
        r"postero-?lateral(?:\s+(?:left\s+ventricular\s+)?(?:branch(?:es)?|artery))?|"
        r"posterior\s+left\s+ventricular(?:\s+branch)?|[RL]-?PL[BV]|PLB|PLV",
        ("PLB",),
    ),
]
_VESSEL_RES = [(re.compile(_B + f"(?:{p})" + _E, re.I), keys) for p, keys in _VESSEL_PATTERNS]
_ANY_VESSEL = "|".join(f"(?:{p})" for p, _ in _VESSEL_PATTERNS)
_GRAFT_HEAD = (
    r"(?:[LR]IMA|[LR]ITA|SVGs?|(?:left|right)\s+internal\s+(?:mammary|thoracic)(?:\s+artery)?|"
    r"saphenous\s+vein(?:\s+bypass)?\s+grafts?|vein\s+grafts?|radial(?:\s+artery)?\s+grafts?|"
    r"(?:coronary\s+artery\s+)?bypass\s+grafts?|jump\s+grafts?|sequential\s+grafts?|grafts?)"
)
_GRAFT_RE = re.compile(
    _B
    + _GRAFT_HEAD
    + r"(?:\s+grafts?)?"
    + r"(?:\s*(?:to|-|–|->|→)\s*(?:the\s+)?(?:native\s+)?(?:(?:first|second|third)\s+)?"
    + f"(?:{_ANY_VESSEL}))?"
    + r"(?:\s+grafts?)?"
    + _E,
    re.I,
)
# Every pattern _find_mentions tries (grafts first), matched in one scan of the sentence.
_MENTION_RES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (_GRAFT_RE, ("Graft",)),
    *_VESSEL_RES,
]
_MENTIONS = PatternSet([rx for rx, _ in _MENTION_RES], prefix=_B)
# Text allowed between two vessel mentions of one group: "LAD, LCx and RCA", "LAD and its".
_GROUP_GAP_RE = re.compile(
    r"^(?:\s|,|/|&|\band\b|\bor\b|\bits\b|\bthe\b|\bas\s+well\s+as\b|\bproximal\b|\bmid\b|"
    r"\bdistal\b|\bostial\b)*$",
    re.I,
)
# A grade that names its vessel after it: "severe stenosis of the OM1".
_POINTS_FORWARD_RE = re.compile(  # used with match(text, pos, endpos): no "^" (it would fail)
    r"\s*(?:\([^()]*\)\s*)?(?:[\w-]+\s+){0,2}?(?:of|in|involving|at|within|affecting)\s+"
    r"(?:the\s+)?(?:(?:proximal|mid|distal|ostial)\s+)?$",
    re.I,
)
_LINE_LABEL_RE = re.compile(r"^\s*(?:native\s+)?(?P<label>[^:\n]{1,40}):", re.I)
_SEGMENT_START_RE = re.compile(r"^\s*(?:proximal|mid|distal|ostial)\b", re.I)
# Words pointing back at the vessel of the previous sentence ("70% stenosis in its mid segment").
_ANAPHORA_RE = re.compile(
    r"\b(?:its|this\s+(?:vessel|artery|stent|graft)|the\s+(?:vessel|stent|graft))\b", re.I
)

# --- grades ----------------------------------------------------------------------------------
_NON_DIAGNOSTIC_RE = (
    r"non-?\s?diagnostic|non-?\s?evaluable|unevaluable|not\s+evaluable|non-?\s?assessable|"
    r"uninterpretable|non-?\s?interpretable|"
    r"(?:could|can|cannot|can't)\s*(?:not\s+)?be\s+(?:reliably\s+|adequately\s+)?"
    r"(?:assessed|evaluated|interpreted)|"
    r"not\s+(?:be\s+)?(?:reliably\s+|adequately\s+)?(?:assessed|evaluated|assessable)|"
    r"precludes?\s+(?:\w+\s+)?(?:assessment|evaluation)"
)
_NOT_A_GRADE_AFTER = (
    r"(?=(?:\W+[\w-]+){0,2}?\W+(?:artifacts?|motion|blooming|noise|calcifications?|calcium|burden|"
    r"respiratory|misregistration|image|streak|aortic|mitral|valv\w*|ectasia|dilat\w*|enlarge\w*|"
    r"hypertroph\w*|effusion|emphysema|atelectasis|cardiomegaly)\b)"
)
_TOKEN_RE = re.compile(
    r"(?P<nd>" + _NON_DIAGNOSTIC_RE + r")"
    r"|(?P<ignore>non-?\s?occlusive|nonobstructive|non-obstructive)"
    r"|(?P<severe>(?:sub-?total(?:ly)?\s*|near[- ]?(?:total(?:ly)?\s+)?|nearly\s+)occlu\w*|"
    r"sub-?total|near[- ]occlusive|high[- ]grade|critical(?:ly)?|severely\s+"
    r"(?:narrowed|stenosed|stenotic|diseased)|severe)"
    r"|(?P<occluded>(?:chronic(?:ally)?\s+)?(?:total(?:ly)?\s+)?occlu(?:ded|sions?|sive)|CTO)"
    r"|(?P<range>(?P<lo>\d{1,3})\s*%?\s*(?:-|–|to)\s*(?P<hi>\d{1,3})\s*(?:%|percent))"
    r"|(?P<pct>(?P<cmp><|>|≤|≥|less\s+than|greater\s+than|more\s+than|under|over|up\s+to)?"
    r"\s*(?P<val>\d{1,3}(?:\.\d)?)\s*(?:%|percent))"
    r"|(?P<minimal>minimal)"
    r"|(?P<mild>mild)"
    r"|(?P<moderate>moderate)"
    r"|(?P<zero>normal|unremarkable|(?:widely\s+)?patent)"
    r"|(?P<noun>plaques?|atheroma|atherosclero(?:sis|tic)|stenos[ie]s|(?:in-stent\s+)?restenosis|"
    r"narrowing|luminal\s+irregularit(?:y|ies)|diffusely\s+diseased|disease|CAD)",
    re.I,
)
_WORD_GRADE = {"severe": "70-99", "occluded": "100", "minimal": "1-24", "mild": "25-49"}
_WORD_GRADE["moderate"] = "50-69"
_GRADE_WORDS_WITH_EXCLUSIONS = frozenset({"severe", "minimal", "mild", "moderate"})
_NOT_A_GRADE_AFTER_RE = re.compile(_NOT_A_GRADE_AFTER, re.I)
# "normal origin", "origins are normal": about anatomy, not stenosis (two words either side).
_ANATOMY = r"(?:origins?|course|locations?|anatomy|dominance|variants?|position)"
_NORMAL_ANATOMY_AFTER_RE = re.compile(r"(?:\W+[\w-]+){0,2}?\W+" + _ANATOMY + r"\b", re.I)
_NORMAL_ANATOMY_BEFORE_RE = re.compile(r"\b" + _ANATOMY + r"(?:\W+[\w-]+){0,2}?\W+$", re.I)
# How far back (characters) the "... before a word" checks look: a few words, bounded so that a
# sentence with many such words costs linear time.
_LOOKBACK = 120
_PERCENT_NOT_STENOSIS_RE = re.compile(
    r"ejection\s+fraction|\bL?V?EF\b|percentile|probability|pre-?test|likelihood|heart\s+rate",
    re.I,
)
_GLOBAL_RE = re.compile(
    r"(?<![\w-])(?:coronar\w*|vessels?|arteries|elsewhere|remaining|other|CAD|atherosclerosis)\b",
    re.I,
)
_NOT_GLOBAL_RE = re.compile(r"non-?\s?coronary|extra-?\s?cardiac|extra-?\s?coronary", re.I)
_GLOBAL_ND_RE = re.compile(
    r"\b(?:study|exam|examination|scan|evaluation|quality|assessment|segments?)\b", re.I
)

# --- category, modifiers, burden -----------------------------------------------------------------
_CAD_RADS_RE = re.compile(
    r"CAD[\s-]?RADS\s*(?:™|®|\(tm\))?(?:\s*(?:version\s*)?2\.0(?!\d))?\s*"
    r"(?:category|score|classification|class)?\s*(?:of|is|=|:|-|–)?\s*"
    r"(?P<cat>4\s*[AB]|[0-5]|N)(?![\w+]|\.\d)"
    r"(?P<tail>(?:\s*[/,]\s*(?:P\s*[0-4]|HRP|V|I\s*(?:\+/-|\+|-|–|±)|[NSGE])(?![\w]))*)",
    re.I,
)
_PRIOR_RE = re.compile(r"\b(?:prior|previous|previously|at\s+that\s+time)\b", re.I)
# The CAD-RADS 4B patterns said in words: obstructive left main or three-vessel disease
# ("severe three-vessel coronary artery disease", "significant left main disease", "severe
# stenoses in all three coronary arteries"). Mild, moderate or non-obstructive ones are not 4B.
_SEVERE_WORD = (
    r"(?:severe|obstructive|significant|high[- ]grade|critical|flow[- ]limiting|"
    r"(?:hemo|haemo)dynamically\s+significant)"
)
_THREE_VESSEL = r"(?:(?:three|3|triple)[\s-]*vessels?)"
_FOUR_B_RE = re.compile(
    r"(?<![\w-])(?:"
    + _SEVERE_WORD
    + r"\s+(?:(?:coronary|artery|atherosclerotic|obstructive)\s+)*(?:"
    + _THREE_VESSEL
    + r"|left\s+main|LM)(?:\s+coronary)?(?:\s+artery)?\s+(?:disease|stenos[ie]s|involvement|"
    r"lesions?|narrowing|CAD)"
    r"|" + _THREE_VESSEL + r"\s+" + _SEVERE_WORD + r"\s+(?:coronary\s+)?(?:artery\s+)?"
    r"(?:disease|stenos[ie]s|CAD)"
    r"|" + _SEVERE_WORD + r"\s+(?:stenos[ie]s|disease|narrowing)\s+(?:of|in|involving)\s+"
    r"(?:all\s+three|each\s+of\s+the\s+three)\s+(?:major\s+)?(?:coronary\s+|epicardial\s+)?"
    r"(?:vessels|arteries|territories)"
    r")(?![\w-])",
    re.I,
)
_TAIL_TOKEN_RE = re.compile(r"P\s*[0-4]|HRP|V|I\s*(?:\+/-|\+|-|–|±)|[NSGE]", re.I)
_HRP_PHRASE_RE = re.compile(
    r"high[- ]risk\s+(?:plaque|features?)|vulnerable\s+plaque|\bHRP\b", re.I
)
_HRP_FEATURE_RES: dict[str, re.Pattern[str]] = {
    "positive remodeling": re.compile(r"positive(?:ly)?\s+remodel+(?:ing|ed)", re.I),
    "low-attenuation plaque": re.compile(
        r"low[- ](?:attenuation|density)(?:\s+(?:plaque|core|component))?|\bLAP\b", re.I
    ),
    "napkin-ring sign": re.compile(r"napkin[- ]ring", re.I),
    "spotty calcification": re.compile(r"spotty\s+calci\w*|micro-?calcifications?", re.I),
}
_DENIED_AFTER_RE = re.compile(r"\W*(?:features?)?\s*:\s*(?:none|absent|no\b|not\s+present)", re.I)
_FFR_RE = re.compile(r"FFR[\s-]?CT|CT[\s-]?FFR|FFRct|fractional\s+flow\s+reserve", re.I)
_FFR_VALUE_RE = re.compile(r"(?<![\d.])(0?\.\d{1,2})(?!\d)")
_ISCHEMIA_RE = re.compile(r"ischemi[ac]|ischaemi[ac]", re.I)
_SIGNIFICANT_RE = re.compile(
    r"(?:hemo|haemo)dynamically\s+significant|functionally\s+significant", re.I
)
_FUNCTIONAL_CONTEXT_RE = re.compile(r"FFR|perfusion|\bCTP\b|ischemi|ischaemi", re.I)
_STENT_RE = re.compile(r"(?<![\w])(?:stents?|stented|in-stent)(?![\w])", re.I)
_GRAFT_MOD_RE = re.compile(r"(?<![\w-])(?:grafts?|CABG|[LR]IMA|[LR]ITA|SVGs?|bypass)(?![\w])", re.I)
_EXCEPTION_RE = re.compile(
    r"(?<![\w-])(?:anomal(?:ous|y|ies)|aneurysm\w*|fistula\w*|dissection|vasculitis|"
    r"kawasaki|interarterial|inter-arterial)(?![\w])",
    re.I,
)
_NON_CORONARY_BEFORE_RE = re.compile(
    r"(?:aortic|aorta|ventricular|LV|apical|septal|atrial|pulmonary|venous|abdominal)\W+"
    r"(?:\w+\W+)?$",
    re.I,
)
_CORONARY_CONTEXT_RE = re.compile(r"coronar", re.I)
_STATED_BURDEN_RE = re.compile(r"(?<![\w-])P\s?([0-4])(?![\w])", re.I)
_BURDEN_CONTEXT_RE = re.compile(r"plaque\s+burden|CAD[\s-]?RADS", re.I)
_BURDEN_WORDS_RE = re.compile(
    r"\b(?P<w1>no|minimal|mild|moderate|severe|heavy|extensive)\s+(?:overall\s+|total\s+|"
    r"coronary\s+|atherosclerotic\s+)?plaque\s+burden"
    r"|plaque\s+burden\s*(?:is|:|of|was)?\s*(?P<w2>minimal|mild|moderate|severe|heavy|extensive)\b",
    re.I,
)
_CAC_RE = re.compile(
    r"(?:calcium\s+scor\w*|agatston(?:\s+(?:calcium\s+)?score)?|\bCAC(?:\s+score)?|"
    r"coronary\s+(?:artery\s+)?calcium(?:\s+score)?)"
    r"\s*(?:\([^)]*\))?\s*(?:is|of|was|=|:)?\s*(?:agatston\s*)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|zero)(?![\d.]*\s*%)",
    re.I,
)
_SIS_RE = re.compile(
    r"segment\s+involvement\s+score(?:\s*\(SIS\))?\s*(?:is|of|=|:)?\s*(?P<num>\d{1,2})\b", re.I
)


@dataclass(frozen=True)
class _Mention:
    """A vessel (or graft) mention: the schema keys it names and its span in the clause."""

    keys: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class _Token:
    """A grade found in a clause: a band, ``ND`` (non-diagnostic) or nothing usable."""

    value: str  # a grade, "ND"
    start: int
    end: int


@dataclass
class _Findings:
    """What the clauses said, per vessel, with the sentences that said it."""

    grades: dict[str, list[tuple[str, Sentence]]] = field(default_factory=lambda: defaultdict(list))
    nondiag: dict[str, list[Sentence]] = field(default_factory=lambda: defaultdict(list))
    global_zero: list[Sentence] = field(default_factory=list)
    global_nd: list[Sentence] = field(default_factory=list)


def _find_mentions(text: str) -> list[_Mention]:
    """Vessel and graft mentions, longest first at each position, never overlapping."""
    found: list[_Mention] = []
    for (_, keys), matches in zip(_MENTION_RES, _MENTIONS.finditer_all(text), strict=True):
        found.extend(_Mention(keys, m.start(), m.end()) for m in matches)
    found.sort(key=lambda m: (m.start, -(m.end - m.start), m.keys != ("Graft",)))
    out: list[_Mention] = []
    for m in found:
        if out and m.start < out[-1].end:
            continue
        out.append(m)
    return out


def _group(text: str, mentions: Sequence[_Mention]) -> list[_Mention]:
    """Merge mentions joined only by list punctuation ("LAD, LCx and RCA") into groups."""
    groups: list[_Mention] = []
    for m in mentions:
        if groups and _GROUP_GAP_RE.match(text[groups[-1].end : m.start]):
            last = groups[-1]
            keys = last.keys + tuple(k for k in m.keys if k not in last.keys)
            groups[-1] = _Mention(keys, last.start, m.end)
        else:
            groups.append(m)
    return groups


_CLAUSE_CUT_RE = re.compile(r"[;,](?=\s)")


def _split_clauses(text: str, groups: Sequence[_Mention]) -> list[tuple[int, int]]:
    """Clause spans of a sentence: cut at ";" and at commas that do not sit inside a group."""
    cuts = [0]
    starts = [g.start for g in groups]  # groups are disjoint and in text order
    for m in _CLAUSE_CUT_RE.finditer(text):
        i = bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() < groups[i].end:
            continue  # inside a group ("LAD, LCx and RCA")
        cuts.append(m.end())
    cuts.append(len(text))
    return [(a, b) for a, b in itertools.pairwise(cuts) if text[a:b].strip()]


def _percent_grade(m: re.Match[str]) -> str | None:
    if m.group("range"):
        lo, hi = int(m.group("lo")), int(m.group("hi"))
        if hi > 100 or lo > 100:
            return None
        return grade_of_range(lo, hi)
    value = float(m.group("val"))
    cmp = (m.group("cmp") or "").lower().split()
    if cmp and cmp[0] in ("<", "less", "under"):
        value = max(value - 1, 0.5) if value > 0 else 0
    elif cmp and cmp[0] in (">", "greater", "more", "over"):
        value = min(value + 1, 99)
    if value > 100:
        return None
    return grade_of_percent(value)


def _find_tokens(clause: str) -> list[_Token]:
    """Grades in one clause, with negation applied (a denied plaque or stenosis is 0)."""
    scope = analyze(clause)
    tokens: list[_Token] = []
    not_stenosis: bool | None = None  # the clause is about EF, percentiles...: found once
    for m in _TOKEN_RE.finditer(clause):
        kind = m.lastgroup
        start, end = m.start(), m.end()
        if kind not in ("range", "pct") and _glued_before(clause, start):
            continue
        if end < len(clause) and clause[end].isalnum() and kind not in ("range", "pct"):
            continue
        if kind in ("ignore", None) or (kind == "pct" and m.group("val") is None):
            continue
        if kind == "nd":
            if scope.assertion(start, end) != "negative":
                tokens.append(_Token("ND", start, end))
            continue
        if kind in _GRADE_WORDS_WITH_EXCLUSIONS and _NOT_A_GRADE_AFTER_RE.match(clause, end):
            continue
        assertion = scope.assertion(start, end)
        if kind == "noun":
            word = m.group().lower()
            if assertion == "negative":
                tokens.append(_Token("0", start, end))
            elif word not in ("disease", "cad"):
                tokens.append(_Token("1-24", start, end))
            continue
        if assertion == "negative":
            continue
        if kind == "zero":
            if m.group().lower() == "normal" and (
                _NORMAL_ANATOMY_AFTER_RE.match(clause, end)
                or _NORMAL_ANATOMY_BEFORE_RE.search(clause, max(0, start - _LOOKBACK), start)
            ):
                continue
            tokens.append(_Token("0", start, end))
        elif kind in ("range", "pct"):
            if not_stenosis is None:
                not_stenosis = bool(_PERCENT_NOT_STENOSIS_RE.search(clause))
            if not_stenosis:
                continue
            grade = _percent_grade(m)
            if grade is not None:
                tokens.append(_Token(grade, start, end))
        else:
            tokens.append(_Token(_WORD_GRADE[kind], start, end))
    return tokens


def _glued_before(clause: str, start: int) -> bool:
    """Whether a word starts inside another ("abnormal", "post-stenotic"), not after "to-"."""
    if start == 0:
        return False
    prev = clause[start - 1]
    if prev.isalnum():
        return True
    return prev == "-" and clause[max(0, start - 3) : start - 1].lower() != "to"


def _assign(
    clause: str, groups: list[_Mention], tokens: list[_Token]
) -> list[tuple[_Mention, _Token]]:
    """Pair each grade with the vessel group it describes (see the module docstring)."""
    pairs: list[tuple[_Mention, _Token]] = []
    vessel_first = groups[0].start < tokens[0].start
    ends = [g.end for g in groups]  # groups are disjoint and in text order
    starts = [g.start for g in groups]
    for t in tokens:
        n_before = bisect_right(ends, t.start)  # groups[:n_before] end at or before t
        first_after = bisect_left(starts, t.end)  # groups[first_after:] start at or after t
        before = groups[n_before - 1] if n_before else None
        after = groups[first_after] if first_after < len(groups) else None
        if vessel_first and before is not None:
            target = before
            if after is not None and _POINTS_FORWARD_RE.match(clause, t.end, after.start):
                target = after
        else:
            target = after if after is not None else before
        assert target is not None  # a clause with tokens and groups has one on some side
        pairs.append((target, t))
    return pairs


def _line_label(text: str) -> list[_Mention] | None:
    """The vessel group labelling a per-vessel line ("RCA: ..."), if the sentence starts one."""
    m = _LINE_LABEL_RE.match(text)
    if not m:
        return None
    label = m.group("label")
    mentions = _find_mentions(label)
    if not mentions or any(
        _GROUP_GAP_RE.match(label[a.end : b.start]) is None for a, b in itertools.pairwise(mentions)
    ):
        return None
    return _group(label, mentions)


@dataclass(frozen=True)
class _Clause:
    """One clause of a sentence: its vessel groups and grades (offsets in the clause)."""

    text: str
    groups: tuple[_Mention, ...]
    tokens: tuple[_Token, ...]
    pairs: tuple[tuple[_Mention, _Token], ...]  # grades paired with groups (when it has groups)
    anaphora: bool  # words pointing back at the previous sentence's vessel


@dataclass(frozen=True)
class _SentenceReading:
    """What :meth:`CctaRuleExtractor._read_stenosis` needs of one sentence, by its text alone."""

    label: tuple[_Mention, ...] | None  # the group labelling a per-vessel line ("RCA: ...")
    groups: tuple[_Mention, ...]
    segment_start: bool  # opens with a segment word ("Proximal ...")
    clauses: tuple[_Clause, ...]


# Reports repeat sentences ("LAD: No plaque or stenosis."): a sentence's reading depends on its
# text only, so it is computed once per distinct text.
@sentence_cache
def _read_sentence(text: str) -> _SentenceReading:
    groups = tuple(_group(text, _find_mentions(text)))
    group_starts = [g.start for g in groups]
    clauses: list[_Clause] = []
    for a, b in _split_clauses(text, groups):
        clause = text[a:b]
        clause_groups = tuple(
            _Mention(g.keys, g.start - a, g.end - a)
            for g in groups[bisect_left(group_starts, a) : bisect_left(group_starts, b)]
        )
        tokens = tuple(_find_tokens(clause)) if clause.strip() else ()
        pairs = (
            tuple(_assign(clause, list(clause_groups), list(tokens)))
            if clause_groups and tokens
            else ()
        )
        clauses.append(
            _Clause(clause, clause_groups, tokens, pairs, bool(_ANAPHORA_RE.search(clause)))
        )
    label = _line_label(text)
    return _SentenceReading(
        label=tuple(label) if label is not None else None,
        groups=groups,
        segment_start=bool(_SEGMENT_START_RE.match(text)),
        clauses=tuple(clauses),
    )


@dataclass(frozen=True)
class _ModifierCues:
    """Modifier cues one sentence affirms, by its text alone (see ``_modifiers``)."""

    hrp: int  # affirmed high-risk-plaque phrases
    features: tuple[str, ...]  # affirmed high-risk features, in _HRP_FEATURE_RES order
    ffr_values: tuple[float, ...]  # plausible FFR values after an FFR mention, in text order
    ischemia: int  # affirmed ischemia / significance phrases in a functional context
    exception: int  # affirmed coronary exceptions (anomaly, aneurysm, ...)


@sentence_cache
def _modifier_cues(text: str) -> _ModifierCues:
    scope = analyze(text)
    hrp = sum(1 for m in _HRP_PHRASE_RE.finditer(text) if _affirmed(scope, text, m))
    features = tuple(
        name
        for name, rx in _HRP_FEATURE_RES.items()
        if any(_affirmed(scope, text, m) for m in rx.finditer(text))
    )
    ffr_values: list[float] = []
    ffr = _FFR_RE.search(text)
    if ffr:
        for v in _FFR_VALUE_RE.finditer(text, ffr.end()):
            value = float(v.group(1))
            if 0.3 <= value <= 1.0:
                ffr_values.append(value)
    ischemia = 0
    if _FUNCTIONAL_CONTEXT_RE.search(text):
        for rx in (_ISCHEMIA_RE, _SIGNIFICANT_RE):
            for m in rx.finditer(text):
                if _affirmed(scope, text, m) and not _is_i_minus(text, m):
                    ischemia += 1
    exception = 0
    coronary: bool | None = None  # the sentence is about the coronaries: found once
    for m in _EXCEPTION_RE.finditer(text):
        if coronary is None:
            coronary = bool(_find_mentions(text) or _CORONARY_CONTEXT_RE.search(text))
        if (
            coronary
            and not _NON_CORONARY_BEFORE_RE.search(text, max(0, m.start() - _LOOKBACK), m.start())
            and _affirmed(scope, text, m)
        ):
            exception += 1
    return _ModifierCues(
        hrp=hrp,
        features=features,
        ffr_values=tuple(ffr_values),
        ischemia=ischemia,
        exception=exception,
    )


@sentence_cache
def _history_cues(text: str) -> tuple[bool, bool]:
    """Whether a sentence affirms a stent, and a bypass graft (modifiers S and G)."""
    scope = analyze(text)
    return (
        any(_affirmed(scope, text, m) for m in _STENT_RE.finditer(text)),
        any(_affirmed(scope, text, m) for m in _GRAFT_MOD_RE.finditer(text)),
    )


class CctaRuleExtractor(RuleExtractor):
    """CAD-RADS 2.0 category, plaque burden, modifiers and per-vessel stenosis from CCTA text."""

    schema_name = "ccta"
    rules_version = "1"

    def __init__(self, schema: SchemaSpec) -> None:
        super().__init__(schema)
        vessels = schema.keys_for(schema.field("stenosis")) or []
        unknown = [v for v in vessels if v not in TERRITORY]
        if unknown:
            raise ValueError(f"{schema.id} has vessel keys the ccta rules do not know: {unknown}")
        self.vessels: tuple[str, ...] = tuple(vessels)
        self.modifier_order: tuple[str, ...] = tuple(
            schema.allowed_values(schema.field("modifiers")) or ()
        )

    def extract_doc(self, doc: Document) -> tuple[Labels, EvidenceMap]:
        sentences = [s for s in doc.sentences if s.section not in SKIPPED_SECTIONS]
        findings = self._read_stenosis(doc, sentences)
        evidence: EvidenceMap = {}
        stenosis, extra, nd_segments = self._roll_up(findings, evidence)
        nd_flag = nd_segments or bool(findings.global_nd)

        stated = self._stated_category(sentences)
        derived = derive_cad_rads({**stenosis, **extra}, non_diagnostic=nd_flag)
        four_b = _four_b_in_words(sentences)
        if stated is not None:
            category, stated_tail, stated_sentence = stated
            evidence["cad_rads"] = [evidence_of(stated_sentence)]
            if category == "4":  # the subcategory: from the grades, else from the words
                category = derived if derived in ("4A", "4B") else "4A"
                if category == "4A" and four_b is not None:
                    category = "4B"
                    evidence["cad_rads"] = _unique_evidence([stated_sentence, four_b])
        else:
            category, stated_tail = derived, []
            if four_b is not None and derived not in ("4B", "5"):
                category = "4B"  # the words state more than the grades read per vessel
                evidence["cad_rads"] = [evidence_of(four_b)]
            elif derived is not None:
                evidence["cad_rads"] = self._derived_evidence(findings, stenosis, derived)

        nd_sentences = [x for lst in findings.nondiag.values() for x in lst] + findings.global_nd
        modifiers, mod_evidence = self._modifiers(
            doc,
            sentences,
            stated_tail,
            stated[2] if stated is not None else None,
            nd_flag,
            nd_sentences,
            category,
        )
        if mod_evidence:
            evidence["modifiers"] = mod_evidence
        burden, burden_sentence = self._plaque_burden(sentences, stated_tail, stated, category)
        if burden_sentence is not None:
            evidence["plaque_burden"] = [evidence_of(burden_sentence)]

        labels: Labels = {
            "cad_rads": category,
            "plaque_burden": burden,
            "modifiers": modifiers,
            "stenosis": {k: stenosis[k] for k in self.vessels},
        }
        return labels, evidence

    # -- stenosis -----------------------------------------------------------------------------
    def _read_stenosis(self, doc: Document, sentences: list[Sentence]) -> _Findings:
        findings = _Findings()
        label_group: Sequence[_Mention] | None = None
        previous: Sentence | None = None
        previous_last: list[_Mention] = []
        for s in sentences:
            new_line = previous is None or "\n" in doc.text[previous.end : s.start]
            reading = _read_sentence(s.text)
            own_label = reading.label
            if own_label is not None:
                label_group = own_label
            elif new_line:
                label_group = None
            groups = reading.groups
            carried: Sequence[_Mention] | None = None
            if label_group is not None and own_label is None:
                carried = label_group
            elif reading.segment_start and not groups and previous_last:
                carried = previous_last
            last_group: _Mention | None = None
            for c in reading.clauses:
                tokens = c.tokens
                if c.groups:
                    last_group = c.groups[-1]
                if not tokens:
                    continue
                if c.groups:
                    pairs: Sequence[tuple[_Mention, _Token]] = c.pairs
                else:
                    if carried is None and previous_last and c.anaphora:
                        carried = previous_last
                    pairs = self._vesselless(c.text, tokens, last_group, carried, s, findings)
                for group, token in pairs:
                    for key in group.keys:
                        if token.value == "ND":
                            findings.nondiag[key].append(s)
                        else:
                            findings.grades[key].append((token.value, s))
            if groups:
                previous_last = [groups[-1]]
            previous = s
        return findings

    def _vesselless(
        self,
        clause: str,
        tokens: Sequence[_Token],
        last_group: _Mention | None,
        carried: Sequence[_Mention] | None,
        sentence: Sentence,
        findings: _Findings,
    ) -> list[tuple[_Mention, _Token]]:
        """Grades of a clause that names no vessel: global, borrowed, or study-wide N."""
        values = {t.value for t in tokens}
        if values == {"0"} and _GLOBAL_RE.search(clause) and not _NOT_GLOBAL_RE.search(clause):
            findings.global_zero.append(sentence)
            return []
        if last_group is not None:
            return [(last_group, t) for t in tokens]
        if carried:
            return [(carried[-1], t) for t in tokens]
        if "ND" in values and _GLOBAL_ND_RE.search(clause):
            findings.global_nd.append(sentence)
        return []

    def _roll_up(
        self, findings: _Findings, evidence: EvidenceMap
    ) -> tuple[dict[str, str], dict[str, str], bool]:
        """Per-vessel values (schema keys and extra branches) and whether N applies anywhere."""
        stenosis: dict[str, str] = {}
        extra: dict[str, str] = {}
        nd_any = False
        # schema vessels in schema order, then other branches: the evidence map's key order
        # is the same on every run (a set's order changes with the hash seed)
        others = (set(findings.grades) | set(findings.nondiag)) - set(self.vessels)
        for key in [*self.vessels, *sorted(others)]:
            graded = findings.grades.get(key, [])
            nd = findings.nondiag.get(key, [])
            nd_any = nd_any or bool(nd)
            value = roll_up([g for g, _ in graded], bool(nd))
            if key in self.vessels:
                stenosis[key] = value
                sents = nd if value == NON_DIAGNOSTIC else [s for g, s in graded if g == value]
                if sents:
                    evidence[f"stenosis.{key}"] = _unique_evidence(sents)
            elif value != NOT_MENTIONED:
                extra[key] = value
        if findings.global_zero:
            for key in MAIN_VESSELS:
                if stenosis[key] == NOT_MENTIONED:
                    stenosis[key] = "0"
                    evidence[f"stenosis.{key}"] = _unique_evidence(findings.global_zero)
        return stenosis, extra, nd_any

    def _derived_evidence(
        self, findings: _Findings, stenosis: dict[str, str], category: str
    ) -> list[Evidence]:
        graded = {k: v for k, v in stenosis.items() if v not in (NON_DIAGNOSTIC, NOT_MENTIONED)}
        best = max_grade(graded.values())
        sents: list[Sentence] = []
        if best is not None:
            for key, value in graded.items():
                if grade_rank(value) == grade_rank(best):
                    sents.extend(s for g, s in findings.grades.get(key, []) if g == value)
            if not sents:
                sents.extend(findings.global_zero)
        if category == "N":
            for lst in findings.nondiag.values():
                sents.extend(lst)
            sents.extend(findings.global_nd)
        return _unique_evidence(sents)

    # -- category, modifiers, plaque burden ----------------------------------------------------
    def _stated_category(self, sentences: list[Sentence]) -> tuple[str, list[str], Sentence] | None:
        """The category the report states (impression first), its modifier tail, its sentence."""
        ordered = [s for s in sentences if s.section == "impression"]
        ordered += [s for s in sentences if s.section != "impression"]
        for s in ordered:
            prior = _PRIOR_RE.search(s.text)  # the first "prior ..." of the sentence
            for m in _CAD_RADS_RE.finditer(s.text):
                if prior is not None and prior.end() <= m.start():
                    continue
                cat = re.sub(r"\s+", "", m.group("cat")).upper()
                tail = [
                    re.sub(r"\s+", "", t).upper() for t in _TAIL_TOKEN_RE.findall(m.group("tail"))
                ]
                return cat, tail, s
        return None

    def _modifiers(
        self,
        doc: Document,
        sentences: list[Sentence],
        stated_tail: list[str],
        stated_sentence: Sentence | None,
        nd_flag: bool,
        nd_sentences: list[Sentence],
        category: str | None,
    ) -> tuple[list[str], list[Evidence]]:
        found: dict[str, list[Sentence]] = defaultdict(list)
        stated: set[str] = set()
        for t in stated_tail:
            if t in ("N", "HRP", "S", "G", "E"):
                stated.add(t)
            elif t == "V":
                stated.add("HRP")
            elif t == "I+":
                stated.add("I")
        features: dict[str, Sentence] = {}
        min_ffr: tuple[float, Sentence] | None = None
        for s in sentences:
            cues = _modifier_cues(s.text)
            if cues.hrp:
                found["HRP"].extend([s] * cues.hrp)
            for name in cues.features:
                if name not in features:
                    features[name] = s
            for value in cues.ffr_values:
                if min_ffr is None or value < min_ffr[0]:
                    min_ffr = (value, s)
            if cues.ischemia:
                found["I"].extend([s] * cues.ischemia)
            if cues.exception:
                found["E"].extend([s] * cues.exception)
        # Stents and grafts are facts of history: the indication may be the only place they appear.
        for s in doc.sentences:
            stent, graft = _history_cues(s.text)
            if stent:
                found["S"].append(s)
            if graft:
                found["G"].append(s)
        if len(features) >= 2:
            found["HRP"].extend(features.values())
        if min_ffr is not None and min_ffr[0] <= 0.75:
            found["I"].append(min_ffr[1])
        present = set(found) | stated
        if nd_flag or category == "N":
            present.add("N")
            found["N"].extend(nd_sentences)
        if stated and stated_sentence is not None:
            for name in stated:
                found[name].append(stated_sentence)
        evidence: list[Sentence] = []
        for name in self.modifier_order:
            evidence.extend(found.get(name, []))
        return [m for m in self.modifier_order if m in present], _unique_evidence(evidence)

    def _plaque_burden(
        self,
        sentences: list[Sentence],
        stated_tail: list[str],
        stated: tuple[str, list[str], Sentence] | None,
        category: str | None,
    ) -> tuple[str | None, Sentence | None]:
        for t in stated_tail:
            if t.startswith("P") and stated is not None:
                return t, stated[2]
        for s in sentences:
            if _BURDEN_CONTEXT_RE.search(s.text):
                m = _STATED_BURDEN_RE.search(s.text)
                if m:
                    return f"P{m.group(1)}", s
        for s in sentences:
            m = _BURDEN_WORDS_RE.search(s.text)
            if m:
                burden = plaque_burden_from_words(m.group("w1") or m.group("w2"))
                if burden:
                    return burden, s
        for s in sentences:
            m = _CAC_RE.search(s.text)
            if m:
                raw = m.group("num").replace(",", "").lower()
                burden = plaque_burden_from_cac(0 if raw == "zero" else float(raw))
                if burden:
                    return burden, s
                break
        for s in sentences:
            m = _SIS_RE.search(s.text)
            if m:
                burden = plaque_burden_from_sis(int(m.group("num")))
                if burden:
                    return burden, s
        if category == "0":
            return "P0", None
        return None, None


@sentence_cache
def _states_four_b(text: str) -> bool:
    """Whether a sentence affirms obstructive left main or three-vessel disease in words."""
    if not _FOUR_B_RE.search(text):
        return False
    scope = analyze(text)
    return any(_affirmed(scope, text, m) for m in _FOUR_B_RE.finditer(text))


def _four_b_in_words(sentences: Sequence[Sentence]) -> Sentence | None:
    """The first sentence (impression first) that states a CAD-RADS 4B pattern in words."""
    ordered = [s for s in sentences if s.section == "impression"]
    ordered += [s for s in sentences if s.section != "impression"]
    for s in ordered:
        if _PRIOR_RE.search(s.text) is None and _states_four_b(s.text):
            return s
    return None


def _affirmed(scope: SentenceScope, text: str, m: re.Match[str]) -> bool:
    """Whether a mention is asserted: not negated nor hedged, nor followed by ": none"."""
    if _DENIED_AFTER_RE.match(text, m.end()):
        return False
    return scope.assertion(m.start(), m.end()) == "positive"


def _is_i_minus(text: str, m: re.Match[str]) -> bool:
    """'I-' written right after the ischemia phrase marks the absence of ischemia."""
    return bool(_I_MINUS_RE.match(text, m.end()))


_I_MINUS_RE = re.compile(r"\s*\(?\s*I\s*[-–]")


def _unique_evidence(sentences: list[Sentence]) -> list[Evidence]:
    seen: set[int] = set()
    out: list[Evidence] = []
    for s in sorted(sentences, key=lambda x: x.start):
        if s.start not in seen:
            seen.add(s.start)
            out.append(evidence_of(s))
    return out
