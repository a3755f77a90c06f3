"""The plain scope algorithm, kept as the reference the indexed one is tested against.

Every trigger checked for every mention, each gap sliced and searched: the rules of
:mod:`extractors.rules.scope` written out directly (this is how the module answered before it
was indexed, plus the later clause rules). Quadratic and worse in the sentence length, so only
for short sentences in tests.
"""

from __future__ import annotations

import re

from extractors.rules.scope import _REACH, _TRIGGER_RE, _WEAK_HEDGE_RE, Trigger

_COORDINATOR = re.compile(r"(?<![\w-])(?:or|nor|and)(?![\w-])", re.IGNORECASE)
_CLOSING_COMMA = re.compile(r",(?!\s*(?:or|nor|and|as\s+well\s+as)(?![\w-]))", re.IGNORECASE)


class PlainScope:
    """What :class:`extractors.rules.scope.SentenceScope` answers, computed the plain way."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.terminators: list[int] = []
        self.predicates: list[int] = []
        raw: list[Trigger] = []
        for m in _TRIGGER_RE.finditer(text):
            group = m.lastgroup or ""
            if group in ("term", "punct"):
                self.terminators.append(m.start())
            elif group == "pred":
                self.predicates.append(m.start())
            elif group != "pseudo":
                kind, direction = group.split("_")
                kind = "uncertainty" if kind == "unc" else "negation"
                raw.append(Trigger(kind, direction, m.start(), m.end(), m.group()))  # type: ignore[arg-type]
        self.triggers = raw
        if len(raw) > 1:
            self.triggers = [
                Trigger("negation", "pre", t.start, t.end, t.text) if self._absorbed(t, raw) else t
                for t in raw
            ]

    def _absorbed(self, trigger: Trigger, raw: list[Trigger]) -> bool:
        if trigger.kind != "uncertainty" or not _WEAK_HEDGE_RE.fullmatch(trigger.text):
            return False
        for t in raw:
            if t.start >= trigger.start:
                return False
            if t.kind == "negation" and self._reaches(t.end, trigger.start, _REACH[t.direction][1]):
                return True
        return False

    def _reaches(
        self, a: int, b: int, limit: int, comma_stops: bool = False, clause_stops: bool = False
    ) -> bool:
        if limit <= 0 or any(a <= t < b for t in self.terminators):
            return False
        gap = self.text[a:b]
        if comma_stops and "," in gap:
            return False
        if clause_stops:
            if any(a <= p < b for p in self.predicates):
                return False
            first = _COORDINATOR.search(gap)  # a list closed by a comma after its "or"/"and"
            closing = first and _CLOSING_COMMA.search(self.text, a + first.end())
            if closing and closing.start() < b:
                return False
        return len(gap.split()) <= limit

    def assertion(self, start: int, end: int) -> str:
        before = after = None
        for t in self.triggers:
            back, forward = _REACH[t.direction]
            if t.end <= start:
                clause = t.kind == "negation" and t.direction == "pre"
                if self._reaches(t.end, start, forward, t.direction == "both", clause):
                    before = t
            elif t.start >= end:
                if self._reaches(end, t.start, back, t.direction == "both"):
                    after = t
                break
        kinds = {t.kind for t in (before, after) if t is not None}
        if "uncertainty" in kinds:
            return "uncertain"
        return "negative" if "negation" in kinds else "positive"
