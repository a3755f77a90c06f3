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

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

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
#: Entries per cache, characters of sentence text per cache, and the longest text that is cached
#: at all. The character budget bounds memory by size, not count: a cache never holds more than
#: ~1 M characters of text (plus results of about that size) however long the reports are, and
#: a sentence longer than SENTENCE_CACHE_MAX_TEXT (real ones stay under ~300 characters; long
#: ones do not repeat) is computed every time rather than evicting hundreds of short ones.
SENTENCE_CACHE_SIZE = 16384
SENTENCE_CACHE_CHARS = 1_000_000
SENTENCE_CACHE_MAX_TEXT = 4_096


class SentenceCache(Generic[T]):
    """An LRU cache of a pure function whose first argument is a sentence's text.

    Bounded by entries *and* by the total length of the cached texts (``functools.lru_cache``
    bounds only the count, so a few hundred long reports held gigabytes). Positional arguments
    only; they must be hashable.
    """

    def __init__(
        self,
        func: Callable[..., T],
        max_entries: int = SENTENCE_CACHE_SIZE,
        max_chars: int = SENTENCE_CACHE_CHARS,
        max_text: int = SENTENCE_CACHE_MAX_TEXT,
    ) -> None:
        self._func = func
        self._data: OrderedDict[Any, T] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries, self.max_chars, self.max_text = max_entries, max_chars, max_text
        self.chars = 0  # characters of text held now
        self.hits = self.misses = 0
        functools.update_wrapper(self, func)

    def __call__(self, text: str, *args: Any) -> T:
        n = len(text)
        if n > self.max_text:
            self.misses += 1
            return self._func(text, *args)
        key = (text, *args) if args else text
        data = self._data
        with self._lock:
            if key in data:
                data.move_to_end(key)
                self.hits += 1
                return data[key]
            self.misses += 1
        value = self._func(text, *args)
        with self._lock:
            if key not in data:
                data[key] = value
                self.chars += n
                while data and (self.chars > self.max_chars or len(data) > self.max_entries):
                    old, _ = data.popitem(last=False)
                    self.chars -= len(old[0] if isinstance(old, tuple) else old)
        return value

    def __len__(self) -> int:
        return len(self._data)

    def cache_clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.chars = 0
            self.hits = self.misses = 0


_CACHES: list[SentenceCache[Any]] = []


def sentence_cache(func: Callable[..., T]) -> SentenceCache[T]:
    """Cache a pure function of one sentence's text (and other hashable arguments): reports
    repeat sentences a lot.

    The results must be immutable (tuples, frozen dataclasses): every caller shares them.
    Bounded by entries and by characters (:class:`SentenceCache`);
    :func:`clear_sentence_caches` empties all of them (benchmarks measure cold caches with it).
    """
    cached = SentenceCache(func)
    _CACHES.append(cached)
    return cached


def sentence_cache_chars() -> int:
    """Characters of sentence text held by all the rule caches together (for memory checks)."""
    return sum(c.chars for c in _CACHES)


def clear_sentence_caches() -> None:
    """Empty every per-sentence cache of the rule modules (the scope analysis cache included)."""
    for cached in _CACHES:
        cached.cache_clear()
