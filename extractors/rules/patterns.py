"""Regex helpers for the rule modules: many patterns in one scan, and per-sentence caches.

Rule modules try a dozen or more patterns on every sentence. Scanning the sentence once per
pattern costs one pass of the regex engine per pattern at every character; most positions can
start none of them. :class:`PatternSet` scans once with a zero-width lookahead that holds at
every position where *some* pattern matches, then tries each pattern only at those positions,
skipping the positions inside its own previous match. That reproduces ``pattern.finditer(text)``
match for match (same spans, groups and order), because every position where a pattern matches
is a candidate, and ``finditer`` is exactly "the first match at or after the end of the last".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

T = TypeVar("T")

_NAMED_GROUP_RE = re.compile(r"\(\?P<\w+>")
_BACKREF_RE = re.compile(r"\(\?P=|\\[1-9]")


class PatternSet:
    """Patterns that share flags (and optionally a leading lookbehind), matched in one scan.

    ``prefix``: a leading fragment every pattern starts with (e.g. ``(?<![\\w-])``); the
    combined scan checks it once per position instead of once per pattern. Patterns must not
    match the empty string (checked on an empty text) nor use backreferences (checked).
    """

    __slots__ = ("_starts_re", "patterns")

    def __init__(self, patterns: Sequence[re.Pattern[str]], prefix: str = "") -> None:
        if not patterns:
            raise ValueError("a PatternSet needs at least one pattern")
        flags = {p.flags for p in patterns}
        if len(flags) != 1:
            raise ValueError("all patterns of a PatternSet must share their flags")
        bodies: list[str] = []
        for p in patterns:
            if not p.pattern.startswith(prefix):
                raise ValueError(f"pattern {p.pattern[:40]!r}... does not start with {prefix!r}")
            if _BACKREF_RE.search(p.pattern):
                raise ValueError(f"pattern {p.pattern[:40]!r}... uses a backreference")
            if p.match("") is not None:
                raise ValueError(f"pattern {p.pattern[:40]!r}... matches the empty string")
            # group names may repeat across patterns: the combined scan needs no groups
            bodies.append(_NAMED_GROUP_RE.sub("(?:", p.pattern[len(prefix) :]))
        self.patterns: tuple[re.Pattern[str], ...] = tuple(patterns)
        self._starts_re = re.compile(
            prefix + "(?=" + "|".join(f"(?:{b})" for b in bodies) + ")", flags.pop()
        )

    def starts(self, text: str) -> list[int]:
        """Every position of ``text`` where at least one pattern matches."""
        return [m.start() for m in self._starts_re.finditer(text)]

    def finditer_all(self, text: str) -> list[list[re.Match[str]]]:
        """``[list(p.finditer(text)) for p in patterns]``, from one scan of ``text``."""
        starts = self.starts(text)
        out: list[list[re.Match[str]]] = []
        for rx in self.patterns:
            found: list[re.Match[str]] = []
            pos = 0
            for p in starts:
                if p >= pos and (m := rx.match(text, p)) is not None:
                    found.append(m)
                    pos = m.end()
            out.append(found)
        return out


# --------------------------------------------------------------------------------------------
# Per-sentence caches
# --------------------------------------------------------------------------------------------
_CACHES: list[Any] = []

SENTENCE_CACHE_SIZE = 16384


def sentence_cache(func: Callable[..., T]) -> Callable[..., T]:
    """Cache a pure function of one sentence's text (and other hashable arguments): reports
    repeat sentences a lot.

    The results must be immutable (tuples, frozen dataclasses): every caller shares them.
    Bounded like :func:`extractors.rules.scope.analyze`; :func:`clear_sentence_caches` empties
    all of them (benchmarks measure cold caches with it).
    """
    cached = lru_cache(maxsize=SENTENCE_CACHE_SIZE)(func)
    _CACHES.append(cached)
    return cached


def clear_sentence_caches() -> None:
    """Empty every per-sentence cache of the rule modules (and the scope analysis cache)."""
    from extractors.rules.scope import analyze

    analyze.cache_clear()
    for cached in _CACHES:
        cached.cache_clear()
