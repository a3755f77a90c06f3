"""Bounded work and bounded memory for every rule extractor, whatever the input's shape.

Adversarial reports (megabytes without a full stop, ~100k tiny sentences, thousands of cues),
the sentence cap, the character-bounded caches, and the indexed helpers of the mammography and
CCTA rules checked against the plain algorithms they replace (on short inputs, where the plain
ones are affordable). Speed itself is measured in ``bench/rules_throughput.py``, not here: these
tests only finish (the old scope loop never did on 1.9 MB) and check what comes out.
"""

from __future__ import annotations

import gc
import itertools
import random
import re
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractors.extract import make_extractor
from extractors.results import ExtractionResult, ReportInput
from extractors.rules import ccta, cxr, mammo
from extractors.rules.base import MAX_SENTENCE_CHARS, bounded_sentences
from extractors.rules.patterns import (
    _CACHES,
    SENTENCE_CACHE_CHARS,
    SENTENCE_CACHE_MAX_TEXT,
    SENTENCE_CACHE_SIZE,
    SentenceCache,
    clear_sentence_caches,
    sentence_cache_chars,
)
from extractors.schemas import get_schema
from extractors.text.sentences import Sentence, split_sentences
from tests.plain_scope import PlainScope

SCHEMAS = ("cxr", "mammo", "ccta")


def extract(schema: str, text: str) -> ExtractionResult:
    (result,) = make_extractor("rules", get_schema(schema)).extract_batch(
        [ReportInput(report_id="r", text=text)]
    )
    assert result.status == "ok", result.error
    return result


def repeat(unit: str, chars: int) -> str:
    """``unit`` repeated up to ``chars`` characters; ``{i}`` numbers each repeat."""
    parts, total = [], 0
    for i in itertools.count():
        if total >= chars:
            break
        parts.append(unit.replace("{i}", str(i)))
        total += len(parts[-1])
    return "".join(parts)[:chars]


def assert_evidence_points_into(result: ExtractionResult, text: str) -> None:
    for spans in (result.evidence or {}).values():
        for ev in spans:
            assert text[ev.start : ev.end] == ev.text
            assert len(ev.text) <= MAX_SENTENCE_CHARS


# --- the shapes from the report that found the cubic loop ----------------------------------
DENIAL = "no evidence of pleural effusion or pneumothorax or "


def test_long_unpunctuated_denial_is_read_in_bounded_pieces() -> None:
    text = repeat(DENIAL, 80_000)  # took > 200 s before the scope was indexed
    result = extract("cxr", text)
    assert result.labels is not None
    assert result.labels["Pleural Effusion"] == "negative"
    assert result.labels["Pneumothorax"] == "negative"
    assert_evidence_points_into(result, text)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("schema", "unit", "field", "expected"),
    [
        ("cxr", DENIAL, "Pleural Effusion", "negative"),
        ("mammo", "no suspicious mass or calcifications in the right breast or ", "mass", None),
        ("ccta", "the LAD has mild plaque with 30% stenosis, the RCA is normal, ", None, None),
    ],
)
def test_a_report_of_nearly_two_megabytes_without_a_full_stop_finishes(
    schema: str, unit: str, field: str | None, expected: str | None
) -> None:
    text = repeat(unit, 1_900_000)  # under the 2 M input limit; never finished before
    result = extract(schema, text)
    assert result.labels is not None
    assert_evidence_points_into(result, text)
    if schema == "cxr":
        assert result.labels[field or ""] == expected
    elif schema == "mammo":
        assert result.labels["mass"]["right"] == "absent"
    else:
        assert result.labels["stenosis"]["LAD"] == "25-49"
        assert result.labels["stenosis"]["RCA"] == "0"


@pytest.mark.parametrize("schema", SCHEMAS)
def test_thousands_of_tiny_sentences(schema: str) -> None:
    unit = {"cxr": "No effusion {i}. ", "mammo": "No mass {i}. ", "ccta": "LAD {i} normal. "}
    text = repeat(unit[schema], 100_000)
    result = extract(schema, text)
    assert_evidence_points_into(result, text)
    assert result.labels is not None
    if schema == "cxr":
        assert result.labels["Pleural Effusion"] == "negative"
        # one evidence span per sentence that denies it: nothing dropped or merged
        assert len(result.evidence["Pleural Effusion"]) == text.count("effusion")


@pytest.mark.parametrize("schema", SCHEMAS)
def test_thousands_of_cues_in_one_sentence(schema: str) -> None:
    unit = {
        "cxr": "no edema {i}, possible effusion, ",
        "mammo": "no mass {i}, possible calcification, ",
        "ccta": "no plaque {i}, possible stenosis, ",
    }
    text = repeat(unit[schema], 5_000 * len(unit[schema]))  # ~10k cues
    result = extract(schema, text)
    assert_evidence_points_into(result, text)
    if schema == "cxr":
        assert result.labels is not None
        assert result.labels["Edema"] == "negative"
        assert result.labels["Pleural Effusion"] == "uncertain"


# --- the sentence cap --------------------------------------------------------------------------
def test_short_sentences_pass_the_cap_unchanged() -> None:
    text = "No effusion. Small pneumothorax; mild edema."
    sentences = split_sentences(text)
    assert list(bounded_sentences(sentences)) == sentences


@given(
    st.text(alphabet=st.sampled_from("ab \t,.\u00a0"), min_size=0, max_size=3_000),
    st.integers(min_value=5, max_value=400),
)
@settings(max_examples=200, deadline=None)
def test_long_sentences_are_cut_into_exact_bounded_pieces(text: str, limit: int) -> None:
    text = text.strip()
    sentence = Sentence(text, 7, 7 + len(text), "findings")
    report = "x" * 7 + text
    pieces = list(bounded_sentences([sentence], limit)) if text else []
    for piece in pieces:
        assert 0 < len(piece.text) <= limit
        assert report[piece.start : piece.end] == piece.text == piece.text.strip()
        assert piece.section == "findings"
    assert [p.start for p in pieces] == sorted(p.start for p in pieces)
    # only whitespace is lost, and a word that fits the limit is never split
    assert "".join("".join(p.text.split()) for p in pieces) == "".join(text.split())
    if all(len(w) <= limit for w in text.split()):
        assert [w for p in pieces for w in p.text.split()] == text.split()


# --- caches bounded by characters ----------------------------------------------------------
def test_cache_holds_no_text_longer_than_its_limit_and_stays_in_its_budget() -> None:
    cache: SentenceCache[int] = SentenceCache(len, max_entries=1_000, max_chars=50_000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(400):  # 400 distinct 200 KB texts: none is kept
            assert cache(f"{i:06d}" + "x" * 200_000) == 200_006
        assert len(cache) == 0 and cache.chars == 0
        for i in range(5_000):  # 5,000 distinct 2 KB texts: ~25 fit the budget
            cache(f"{i:06d}" + "y" * 2_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.chars <= 50_000
    assert len(cache) == 50_000 // 2_006
    assert grown < 200_000  # the 10 MB of text that went through left ~50 KB behind


def test_cache_is_lru_and_counts_hits() -> None:
    cache: SentenceCache[str] = SentenceCache(str.upper, max_entries=2, max_chars=10**6)
    cache("a"), cache("b"), cache("a"), cache("c")  # "b" is the least recently used
    assert cache.hits == 1 and cache.misses == 3
    assert cache("a") == "A" and cache.hits == 2
    assert cache("b") == "B" and cache.misses == 4


def test_extracting_long_distinct_reports_keeps_every_cache_in_its_budget() -> None:
    clear_sentence_caches()
    unit = "Small left effusion {i} and no pneumothorax, possible edema "
    for r in range(12):  # 1.2 M characters of distinct text, unpunctuated
        extract("cxr", repeat(unit.replace("{i}", f"{r}-{{i}}"), 100_000))
    held = 0
    for cache in _CACHES:
        keys = list(cache._data)
        texts = [k[0] if isinstance(k, tuple) else k for k in keys]
        assert cache.chars == sum(map(len, texts))  # the accounting is honest
        assert cache.chars <= SENTENCE_CACHE_CHARS
        assert len(cache) <= SENTENCE_CACHE_SIZE
        assert all(len(t) <= SENTENCE_CACHE_MAX_TEXT for t in texts)
        held += cache.chars
    assert 0 < held == sentence_cache_chars()
    clear_sentence_caches()
    assert sentence_cache_chars() == 0


# --- indexed helpers against the plain algorithms -----------------------------------------
def plain_clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = 0
    for m in mammo._CLAUSE_BREAK_RE.finditer(text, 0, start):
        left = m.end()
    m = mammo._CLAUSE_BREAK_RE.search(text, end)
    return left, (m.start() if m else len(text))


def plain_mention_sides(text: str, start: int, end: int) -> frozenset[str]:
    mentions = mammo._side_mentions(text)
    if not mentions:
        return frozenset()
    kinds = {m.sides for m in mentions}
    if len(kinds) == 1:
        return next(iter(kinds))
    a, b = plain_clause_bounds(text, start, end)
    local = [m for m in mentions if m.start >= a and m.end <= b]
    if local:
        return mammo._union(local)
    return min(mentions, key=lambda m: min(abs(m.start - start), abs(m.end - end))).sides


MAMMO_WORDS = [
    "right",
    "left",
    "rt",
    "lt",
    "bilateral",
    "both breasts",
    "(r)",
    "(l)",
    "r breast",
    "mass",
    "calcifications",
    "lymph node",
    "and",
    "but",
    ",",
    ";",
    "with",
    "no",
    "the",
    "in",
    "upper",
    "outer",
    "quadrant",
    "axilla",
    "while",
    "whereas",
    "seen",
]


@given(st.lists(st.sampled_from(MAMMO_WORDS), min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_mammo_sides_by_bisection_match_the_plain_scan(words: list[str]) -> None:
    text = " ".join(words)
    index = mammo._SideIndex(text, mammo._side_mentions(text))
    for m in re.finditer(r"mass|calcifications|lymph node", text):
        assert mammo._clause_bounds(text, m.start(), m.end()) == plain_clause_bounds(
            text, m.start(), m.end()
        )
        assert index.sides_at(m.start(), m.end()) == plain_mention_sides(text, m.start(), m.end())


def plain_assign(clause: str, groups: list[Any], tokens: list[Any]) -> list[tuple[Any, Any]]:
    pairs = []
    vessel_first = groups[0].start < tokens[0].start
    for t in tokens:
        before = [g for g in groups if g.end <= t.start]
        after = [g for g in groups if g.start >= t.end]
        if vessel_first and before:
            target = before[-1]
            if after and re.match(
                "^" + ccta._POINTS_FORWARD_RE.pattern, clause[t.end : after[0].start], re.I
            ):
                target = after[0]
        else:
            target = after[0] if after else before[-1]
        pairs.append((target, t))
    return pairs


CCTA_WORDS = [
    "LAD",
    "proximal",
    "mid RCA",
    "LCx",
    "OM1",
    "D1",
    "left main",
    "mild",
    "severe",
    "50%",
    "70-99%",
    "stenosis",
    "of the",
    "in",
    "plaque",
    "no",
    "normal",
    "occluded",
    "and",
    ",",
    "(calcified)",
]


@given(st.lists(st.sampled_from(CCTA_WORDS), min_size=2, max_size=30))
@settings(max_examples=300, deadline=None)
def test_ccta_grade_to_vessel_pairing_by_bisection_matches_the_plain_scan(words: list[str]) -> None:
    clause = " ".join(words)
    groups = ccta._group(clause, ccta._find_mentions(clause))
    tokens = ccta._find_tokens(clause)
    if groups and tokens:
        assert ccta._assign(clause, groups, tokens) == plain_assign(clause, groups, tokens)


# --- whole reports: long random input finishes; short input gives the plain labels -------
CXR_WORDS = [
    "no",
    "without",
    "possible",
    "may represent",
    "cannot be excluded",
    "versus",
    "is not seen",
    "but",
    "which",
    "there is",
    ",",
    "effusion",
    "pleural effusion",
    "pneumothorax",
    "edema",
    "atelectasis",
    "consolidation",
    "nodule",
    "cardiomegaly",
    "heart size is normal",
    "lungs are clear",
    "small",
    "left",
    "lower lobe",
    "XXXX",
    "mild",
    "and",
    "or",
    "of the",
]
_PRECEDENCE = {"positive": 3, "uncertain": 2, "negative": 1, "not_mentioned": 0}


def random_report(rng: random.Random, sentences: int, max_words: int = 14) -> list[str]:
    return [
        " ".join(rng.choice(CXR_WORDS) for _ in range(rng.randint(1, max_words))) + "."
        for _ in range(sentences)
    ]


def plain_cxr_labels(sentence: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Labels of one short sentence with the plain scope algorithm (tests/plain_scope.py)."""
    with monkeypatch.context() as patched:
        patched.setattr(cxr, "analyze", PlainScope)
        patched.setattr(cxr, "_read_sentence", cxr._read_sentence.__wrapped__)
        labels, _ = cxr.CxrRuleExtractor(get_schema("cxr")).extract_labels(
            ReportInput(report_id="s", text=sentence)
        )
    return labels


@given(st.integers(min_value=0, max_value=2**32))
@settings(max_examples=15, deadline=None)
def test_a_long_cxr_report_is_the_merge_of_its_short_sentences_read_plainly(seed: int) -> None:
    """Labels of a long random report = the precedence merge (positive > uncertain > negative)
    of each sentence's labels from the plain algorithm: indexing, capping and caching change
    nothing a short sentence says."""
    rng = random.Random(seed)
    sentences = random_report(rng, rng.randint(50, 400))
    labels = extract("cxr", " ".join(sentences)).labels
    assert labels is not None
    expected: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp:
        for sentence in set(sentences):
            for finding, state in plain_cxr_labels(sentence, mp).items():
                if _PRECEDENCE[state] > _PRECEDENCE[expected.get(finding, "not_mentioned")]:
                    expected[finding] = state
    for finding, state in labels.items():
        if finding != cxr.NO_FINDING:
            assert state == expected.get(finding, "not_mentioned"), finding


@pytest.mark.slow
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(SCHEMAS))
@settings(max_examples=12, deadline=None)
def test_long_random_run_on_reports_finish_with_valid_labels(seed: int, schema: str) -> None:
    rng = random.Random(seed)
    vocab = {"cxr": CXR_WORDS, "mammo": MAMMO_WORDS, "ccta": CCTA_WORDS}[schema]
    words = [rng.choice(vocab) for _ in range(rng.randint(5_000, 40_000))]
    text = " ".join(words)  # no full stop at all
    result = extract(schema, text)  # schema-validated on the batch path
    assert_evidence_points_into(result, text)
