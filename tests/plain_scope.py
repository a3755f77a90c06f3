"""The plain scope algorithm, kept as the reference the indexed one is tested against.

This is how :class:`extractors.rules.scope.SentenceScope` answered before it was indexed: every
trigger checked for every mention, each gap sliced and split into words. Quadratic (and worse)
in the sentence length, so only for short sentences in tests.
"""

from __future__ import annotations

from extractors.rules.scope import _REACH, _TRIGGER_RE, _WEAK_HEDGE_RE, SentenceScope, Trigger


class PlainScope:
    """The plain algorithm the indexed :class:`SentenceScope` must reproduce: every trigger
    checked for every mention, each gap sliced and split into words (quadratic and worse, so
    only for short sentences)."""

    def __init__(self, text: str) -> None:
        scope = SentenceScope(text)
        self.text = text
        self.terminators = scope.terminators
        raw = [
            Trigger(kind, direction, m.start(), m.end(), m.group())
            for m in _TRIGGER_RE.finditer(text)
            if m.lastgroup not in ("term", "punct", "pseudo")
            for kind, direction in [_kind_direction(m.lastgroup)]
        ]
        self.triggers = raw
        if len(raw) > 1:
            self.triggers = [t for t in raw if not self._absorbed(t, raw)]

    def _absorbed(self, trigger: Trigger, raw: list[Trigger]) -> bool:
        if trigger.kind != "uncertainty" or not _WEAK_HEDGE_RE.fullmatch(trigger.text):
            return False
        for t in raw:
            if t.start >= trigger.start:
                return False
            if t.kind == "negation" and self._reaches(t.end, trigger.start, _REACH[t.direction][1]):
                return True
        return False

    def _reaches(self, a: int, b: int, limit: int, comma_stops: bool = False) -> bool:
        if limit <= 0 or any(a <= t < b for t in self.terminators):
            return False
        gap = self.text[a:b]
        if comma_stops and "," in gap:
            return False
        return len(gap.split()) <= limit

    def assertion(self, start: int, end: int) -> str:
        before = after = None
        for t in self.triggers:
            back, forward = _REACH[t.direction]
            if t.end <= start:
                if self._reaches(t.end, start, forward, t.direction == "both"):
                    before = t
            elif t.start >= end:
                if self._reaches(end, t.start, back, t.direction == "both"):
                    after = t
                break
        kinds = {t.kind for t in (before, after) if t is not None}
        if "uncertainty" in kinds:
            return "uncertain"
        return "negative" if "negation" in kinds else "positive"


def _kind_direction(group: str | None) -> tuple[str, str]:
    assert group is not None
    kind, direction = group.split("_")
    return ("uncertainty" if kind == "unc" else "negation"), direction
