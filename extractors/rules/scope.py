"""Negation and uncertainty scope for one sentence, reusable by every rule module.

A *trigger* is a cue such as "no", "without", "is not seen" (negation) or "may", "possible",
"cannot be excluded" (uncertainty). Each trigger reaches in one direction:

* ``pre`` triggers govern the words after them ("no pleural effusion or pneumothorax");
* ``post`` triggers govern the words before them ("pneumothorax is not seen");
* ``both`` triggers govern a few words on either side, not across a comma ("atelectasis
  versus pneumonia", "resolved effusion" / "effusion resolved").

A trigger's scope stops at a *terminator* (clause connectives such as "but", "however",
"although", "which", "other than", a semicolon or colon, a new "there is" clause), at the
sentence end, and after a maximum number of words. *Pseudo-triggers* ("no change in",
"no interval increase") are matched only to stop the words inside them from triggering.

Decisions (documented in ``docs/label-semantics.md``):

* The nearest in-scope trigger on each side decides; when the two sides disagree, uncertainty
  beats negation ("no ... cannot be excluded" is uncertain).
* Double negation of an exclusion is uncertainty: "not excluded", "cannot be ruled out".
* "likely", "probable", "suspected", "suggestive of", "concerning for", "versus" are uncertain
  (the CheXpert convention); "consistent with", "compatible with", "represents" are positive.
* "unlikely" and "less likely" are uncertain (a hedge, not a denial).

Usage::

    from extractors.rules.scope import analyze, assertion_of
    assertion_of("No effusion or pneumothorax.", 13, 25)         # -> "negative"
    scope = analyze(sentence_text)                                 # once per sentence
    scope.assertion(start, end)                                    # per mention, cheap

Offsets are relative to the sentence text. Matching is case-insensitive; "XXXX" masks are
ordinary words.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Literal, cast

from extractors.rules.patterns import sentence_cache

Assertion = Literal["positive", "negative", "uncertain"]
TriggerKind = Literal["negation", "uncertainty"]
Direction = Literal["pre", "post", "both"]

# Maximum distance, in words, between a trigger and the mention it governs.
MAX_PRE_WORDS = 14
MAX_POST_WORDS = 8
MAX_BOTH_WORDS = 5

_COPULA = r"(?:(?:is|are|was|were|be|been|has\s+been|have\s+been|has|have)\s+)?"
_SEEN = (
    r"(?:seen|identified|visualized|visualised|appreciated|present|evident|demonstrated|noted|"
    r"detected|visible|apparent|shown|observed|found|recognized)"
)

# --- trigger phrase lists (our own wording; regex fragments, matched on word boundaries) -----
_PSEUDO = [
    # "no" / "not" that do not deny a finding
    r"no\s+(?:significant\s+|substantial\s+|appreciable\s+|definite\s+|major\s+|"
    r"interval\s+|significant\s+interval\s+|further\s+)?"
    r"(?:change|changes|increase|decrease|enlargement\s+of\s+the\s+known|worsening|"
    r"improvement|progression|difference)",
    r"not\s+(?:significantly\s+)?(?:changed|increased|decreased|improved|worsened|only)",
    r"without\s+(?:significant\s+)?(?:interval\s+)?(?:change|changes|increase|progression)",
    r"gram[\s-]negative",
    r"no\s+longer\s+(?:enlarging|increasing)",
]

_UNCERTAIN_PRE = [
    r"cannot\s+(?:be\s+)?(?:entirely\s+|completely\s+|definitely\s+)?"
    r"(?:excluded?|ruled?[\s-]+out|rule[\s-]+out)",
    r"can\s+not\s+(?:be\s+)?(?:entirely\s+|completely\s+)?(?:excluded?|ruled?\s+out|rule\s+out)",
    r"not\s+(?:be\s+)?(?:entirely\s+|completely\s+|definitely\s+)?(?:excluded|ruled\s+out)",
    r"(?:to\s+)?(?:rule[\s-]+out|r/o|exclude|detect|detecting|identify|identifying)",
    r"(?:evaluat(?:e|ion)|assess(?:ment)?)\s+(?:for|of)",
    r"may|might|could",
    r"possible|possibly|probable|probably|presumably|presumed|perhaps",
    r"(?:most\s+|more\s+|less\s+)?likely|unlikely",
    r"suspect|suspicious(?:\s+(?:for|of))?|suspicion\s+(?:for|of)",
    r"suggest|suggests|suggesting|suggestive(?:\s+of)?|suggestion\s+of",
    r"concern(?:ing)?\s+for|worrisome\s+for|worrisome",
    r"question(?:able|ably)?(?:\s+of)?|questioned",
    r"equivocal|indeterminate|uncertain|not\s+certain|cannot\s+differentiate",
    r"differential(?:\s+diagnosis)?(?:\s+(?:includes?|of|would\s+include))?",
    r"(?:would\s+)?(?:favor|favored|favoring|favour|favoured|favouring)",
    r"(?:is\s+)?(?:not\s+)?(?:entirely\s+|completely\s+)?(?:clear|certain)\s+(?:if|whether)",
    # recommendations, requests and conditions raise a finding without affirming it:
    # "correlate clinically for infection", "follow-up to document resolution of the pneumonia",
    # "in the appropriate clinical setting, this is compatible with pneumonia"
    r"recommend(?:s|ed|ing|ation)?|advised?",
    r"(?:clinical(?:ly)?\s+)?correlat(?:e|ed|ion)(?:\s+clinically)?(?:\s+(?:for|with))?",
    r"(?:follow[\s-]?up\s+(?:[\w-]+\s+){0,4}?(?:for|until|after|to)|to|will)"
    r"(?:\s+(?:document|ensure|confirm|demonstrate|assess)\s+(?:\w+\s+){0,2}?"
    r"(?:resolution|clearing|stability|improvement)(?:\s+of)?)",
    r"follow[\s-]?up\s+(?:[\w-]+\s+){0,4}?(?:to|for|until|after)",
    r"in\s+the\s+(?:appropriate|proper|right|correct)\s+clinical\s+(?:setting|context|scenario)",
    r"if\s+(?:clinically\s+)?(?:indicated|warranted|concerned)",
]

_UNCERTAIN_POST = [
    _COPULA + r"(?:not\s+(?:be\s+)?(?:entirely\s+|completely\s+|definitely\s+)?"
    r"(?:excluded|ruled\s+out))",
    r"(?:cannot|can\s+not|could\s+not|can't)\s+(?:be\s+)?(?:entirely\s+|completely\s+|definitely\s+)?"
    r"(?:excluded|ruled\s+out)",
    r"(?:is|are|was|were|seems|seem|appears|appear)\s+(?:most\s+|more\s+|less\s+)?"
    r"(?:likely|unlikely|possible|probable|suspected|questioned|questionable|favored|"
    r"considered|a\s+consideration|not\s+excluded)",
    r"(?:is|are)\s+(?:also\s+)?(?:a\s+)?(?:possibility|consideration|concern)",
    r"(?:is|are)\s+(?:also\s+)?(?:in|within)\s+the\s+differential(?:\s+diagnosis)?",
]

# Cues that reach a few words either way: "atelectasis versus pneumonia", "suspected
# effusion" / "effusions suspected", "difficult to exclude edema" / "edema difficult to exclude".
_UNCERTAIN_BOTH = [
    r"versus|vs\.?|v\.s\.?",
    r"suspected",
    r"(?:difficult|hard|unable)\s+to\s+(?:entirely\s+|completely\s+)?(?:exclude|rule\s+out)",
]

_NEGATION_PRE = [
    r"no\s+longer",
    r"negative\s+for",
    r"free\s+of",
    r"clear\s+of",
    r"absence\s+of",
    r"(?:interval\s+)?(?:resolution|removal|clearing)\s+of",
    r"without",
    r"neither|nor",
    r"no|not",
    r"(?:rules|ruled)\s+out",
    r"(?:there\s+is\s+)?nothing\s+to\s+suggest",
]

_NEGATION_POST = [
    _COPULA + r"(?:not|no\s+longer)\s+(?:definitely\s+|clearly\s+|well\s+|readily\s+)?" + _SEEN,
    r"(?:is|are|was|were|has\s+been|have\s+been|has|have)\s+(?:since\s+|now\s+|completely\s+)?"
    r"(?:resolved|cleared|excluded|ruled\s+out|absent|removed|gone)",
    r"absent|excluded",
]

# Bare "resolved" / "removed" precede or follow their finding ("resolved effusion",
# "effusion resolved").
_NEGATION_BOTH = [r"resolved|removed"]

_TERMINATORS = [
    r"but|however|although|though|whereas|while|yet|nevertheless|nonetheless",
    r"except(?:\s+(?:for|of))?|apart\s+from|aside\s+from|other\s+than|besides",
    r"with\s+the\s+exception\s+of",
    r"which|who",
    r"otherwise",
    r"there\s+(?:is|are|was|were|has\s+been|have\s+been)",
]


# A finite verb closes the noun phrase a negation denies: "no pneumothorax is seen and a small
# effusion persists", "no infiltrate, the heart is enlarged". Only a negation's forward reach
# stops here (hedges govern predicates: "possibly this is pneumonia"), and cues that start with
# a verb ("is not seen", "is likely") are matched first, so they stay cues.
_PREDICATES = [
    r"is|are|was|were|(?:has|have)\s+been",
    r"remains?|persists?|appears?|seems?",
]


def _words(alternatives: list[str]) -> str:
    return "|".join(f"(?:{a})" for a in alternatives)


# One combined regex. At one position Python takes the first alternative that matches, so the
# more specific groups come first ("cannot be excluded" before "not", "no change" before "no").
# The lookarounds keep "no" from matching inside "nodule" or "not" inside "note".
_GROUPS: list[tuple[str, list[str]]] = [
    ("pseudo", _PSEUDO),
    ("unc_post", _UNCERTAIN_POST),
    ("unc_both", _UNCERTAIN_BOTH),
    ("unc_pre", _UNCERTAIN_PRE),
    ("neg_post", _NEGATION_POST),
    ("neg_both", _NEGATION_BOTH),
    ("neg_pre", _NEGATION_PRE),
    ("pred", _PREDICATES),
    ("term", _TERMINATORS),
]
_TRIGGER_RE = re.compile(
    r"(?<![\w/-])(?:"
    + "|".join(f"(?P<{name}>{_words(alts)})" for name, alts in _GROUPS)
    + r")(?![\w-])|(?P<punct>[;:])",
    re.IGNORECASE,
)

# Hedges that are part of a denied phrase when a negation governs them: "no suspicious
# nodules", "no opacity to suggest pneumonia", "no definite findings suspicious for infection".
# Strong hedges ("no effusion, possible pneumonia") keep their own scope.
_WEAK_HEDGE_RE = re.compile(
    r"suspicious(?:\s+(?:for|of))?|suspect|suggest|suggests|suggesting|suggestive(?:\s+of)?"
    r"|concern(?:ing)?\s+for|worrisome(?:\s+for)?|detect|detecting|identify|identifying",
    re.IGNORECASE,
)

# How many words a trigger reaches (backward, forward) by direction.
_REACH: dict[str, tuple[int, int]] = {
    "pre": (0, MAX_PRE_WORDS),
    "post": (MAX_POST_WORDS, 0),
    "both": (MAX_BOTH_WORDS, MAX_BOTH_WORDS),
}


@dataclass(frozen=True)
class Trigger:
    """A matched cue: its kind, direction and offsets in the sentence."""

    kind: TriggerKind
    direction: Direction
    start: int
    end: int
    text: str


class SentenceScope:
    """Triggers and terminators of one sentence, found once; answers per-mention queries.

    Build it with :func:`analyze` (cached) rather than directly when the same sentence is
    queried for several mentions. One query costs O(log n) in the sentence length: trigger,
    terminator, predicate and comma positions are indexed once, and the number of words between
    two offsets comes from precomputed word offsets (not from slicing and splitting the gap), so
    a sentence of megabytes with thousands of cues stays linear overall.
    """

    __slots__ = (
        "_by_class",
        "_closing_commas",
        "_commas",
        "_coordinators",
        "_starts",
        "_word_ends",
        "_word_starts",
        "predicates",
        "terminators",
        "text",
        "triggers",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self.triggers: list[Trigger] = []
        self.terminators: list[int] = []  # start offsets of terminators, ascending
        self.predicates: list[int] = []  # start offsets of finite verbs (see _PREDICATES)
        for m in _TRIGGER_RE.finditer(text):
            group = m.lastgroup
            if group in ("term", "punct"):
                self.terminators.append(m.start())
            elif group == "pred":
                self.predicates.append(m.start())
            elif group and group != "pseudo":
                kind: TriggerKind = "uncertainty" if group.startswith("unc") else "negation"
                direction = cast(Direction, group.split("_")[1])
                self.triggers.append(Trigger(kind, direction, m.start(), m.end(), m.group()))
        # word, comma and coordinator offsets: built on the first query that needs them
        self._word_starts: list[int] | None = None
        self._word_ends: list[int] = []
        self._commas: list[int] | None = None
        self._coordinators: list[int] = []
        self._closing_commas: list[int] = []
        if len(self.triggers) > 1:
            self._index([t for t in self.triggers if t.kind == "negation"])
            # A weak hedge a negation reaches is part of the denied phrase, and it passes the
            # denial on ("no consolidation is seen to suggest pneumonia"): it becomes a
            # negation cue of its own.
            self.triggers = [
                Trigger("negation", "pre", t.start, t.end, t.text) if self._absorbed(t) else t
                for t in self.triggers
            ]
        self._index(self.triggers)

    def _index(self, triggers: list[Trigger]) -> None:
        """Index ``triggers`` (one regex's matches: disjoint, in text order) by kind and
        direction, and their starts."""
        self._starts = [t.start for t in triggers]
        self._by_class: dict[tuple[str, str], tuple[list[Trigger], list[int]]] = {}
        for key in _FORWARD_CLASSES:
            mine = [t for t in triggers if (t.kind, t.direction) == key]
            self._by_class[key] = (mine, [t.end for t in mine])

    def _nearest_before(self, offset: int, for_mention: bool) -> Trigger | None:
        """The last indexed trigger before ``offset`` that reaches it (``post`` ones never do).

        Reach only shrinks with distance (more words, terminators, predicates and commas in
        the gap), so of each kind and direction only the nearest trigger can be the last one
        that reaches. ``for_mention``: a mention's query (commas stop two-sided cues, clause
        ends stop negations); otherwise a weak hedge's (plain reach).
        """
        best: Trigger | None = None
        for (kind, direction), (triggers, ends) in self._by_class.items():
            i = bisect_right(ends, offset) - 1
            if i < 0:
                continue
            t = triggers[i]
            if best is not None and t.start <= best.start:
                continue
            comma_stops = for_mention and direction == "both"
            clause_stops = for_mention and kind == "negation" and direction == "pre"
            if self._reaches(t.end, offset, _REACH[direction][1], comma_stops, clause_stops):
                best = t
        return best

    def _absorbed(self, trigger: Trigger) -> bool:
        """True for a weak hedge inside a negation's scope ("no suspicious nodule")."""
        if trigger.kind != "uncertainty" or not _WEAK_HEDGE_RE.fullmatch(trigger.text):
            return False
        return self._nearest_before(trigger.start, for_mention=False) is not None

    def _word_count(self, a: int, b: int) -> int:
        """``len(self.text[a:b].split())`` from precomputed word offsets."""
        if self._word_starts is None:
            # (ends first: a scope is shared through the cache, and another thread that sees
            # the starts set must find the ends too)
            spans = [m.span() for m in _WORD_RE.finditer(self.text)]
            self._word_ends = [e for _, e in spans]
            self._word_starts = [s for s, _ in spans]
        # words overlapping [a, b): those starting before b, less those ending at or before a
        return bisect_left(self._word_starts, b) - bisect_right(self._word_ends, a)

    def _index_commas(self) -> list[int]:
        if self._commas is None:  # set last, for the same reason as in _word_count
            commas = [m.start() for m in _COMMA_RE.finditer(self.text)]
            self._coordinators = [m.start() for m in _COORDINATOR_RE.finditer(self.text)]
            self._closing_commas = [
                c for c in commas if not _COORDINATOR_AFTER_RE.match(self.text, c + 1)
            ]
            self._commas = commas
        return self._commas

    def _closes_list(self, a: int, b: int) -> bool:
        """Whether ``[a, b)`` holds a coordinated list that a comma then ends: "no pneumothorax
        or consolidation, mild atelectasis" (a comma followed by "or"/"and" continues it)."""
        self._index_commas()
        i = bisect_left(self._coordinators, a)
        return i < len(self._coordinators) and _any_in(
            self._closing_commas, self._coordinators[i] + 1, b
        )

    def _reaches(
        self,
        a: int,
        b: int,
        limit: int,
        comma_stops: bool = False,
        clause_stops: bool = False,
    ) -> bool:
        """True when ``[a, b)`` holds no terminator and at most ``limit`` words.

        ``comma_stops``: a comma also ends the scope (for the short two-sided cues, which bind
        the phrases right beside them: "opacity, atelectasis versus scarring").
        ``clause_stops``: a predicate or a comma closing a coordinated list also ends it (for a
        negation's forward reach: it denies a noun phrase, not the clause after it).
        """
        if limit <= 0:
            return False
        if _any_in(self.terminators, a, b):
            return False
        if comma_stops and _any_in(self._index_commas(), a, b):
            return False
        if clause_stops and (_any_in(self.predicates, a, b) or self._closes_list(a, b)):
            return False
        return self._word_count(a, b) <= limit

    def governing(self, start: int, end: int) -> tuple[Trigger | None, Trigger | None]:
        """The nearest in-scope trigger before and after the mention ``[start, end)``."""
        before = self._nearest_before(start, for_mention=True)
        after: Trigger | None = None
        # Only the first cue after the mention may govern it: a later post-cue belongs to
        # whatever the intervening cue started ("X, no Y is seen").
        i = bisect_left(self._starts, end)
        if i < len(self._starts):
            t = self.triggers[i]
            if self._reaches(end, t.start, _REACH[t.direction][0], t.direction == "both"):
                after = t
        return before, after

    def assertion(self, start: int, end: int) -> Assertion:
        """``positive``, ``negative`` or ``uncertain`` for the mention at ``[start, end)``."""
        before, after = self.governing(start, end)
        kinds = {t.kind for t in (before, after) if t is not None}
        if "uncertainty" in kinds:
            return "uncertain"
        if "negation" in kinds:
            return "negative"
        return "positive"


# The trigger classes that reach forward, each indexed on its own (see _nearest_before).
_FORWARD_CLASSES: tuple[tuple[str, str], ...] = (
    ("negation", "pre"),
    ("uncertainty", "pre"),
    ("negation", "both"),
    ("uncertainty", "both"),
)
_COORDINATOR_RE = re.compile(r"(?<![\w-])(?:or|nor|and)(?![\w-])", re.IGNORECASE)
_COORDINATOR_AFTER_RE = re.compile(r"\s*(?:or|nor|and|as\s+well\s+as)(?![\w-])", re.IGNORECASE)
_WORD_RE = re.compile(r"\S+")  # what str.split() splits into (same whitespace definition)
_COMMA_RE = re.compile(",")


def _any_in(sorted_offsets: list[int], a: int, b: int) -> bool:
    """Whether some offset of the ascending list lies in ``[a, b)``."""
    i = bisect_left(sorted_offsets, a)
    return i < len(sorted_offsets) and sorted_offsets[i] < b


@sentence_cache
def analyze(sentence_text: str) -> SentenceScope:
    """The scope analysis of one sentence (cached: rules query the same sentence often)."""
    return SentenceScope(sentence_text)


def assertion_of(sentence_text: str, mention_start: int, mention_end: int) -> Assertion:
    """Assertion status of the mention ``sentence_text[mention_start:mention_end]``.

    Raises ``ValueError`` when the offsets do not lie inside the sentence.
    """
    if not 0 <= mention_start <= mention_end <= len(sentence_text):
        raise ValueError(
            f"mention offsets [{mention_start}, {mention_end}) lie outside the sentence "
            f"of length {len(sentence_text)}"
        )
    return analyze(sentence_text).assertion(mention_start, mention_end)
