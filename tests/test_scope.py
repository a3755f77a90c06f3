"""Negation and uncertainty scope (extractors.rules.scope): hand-written sentences, and the
indexed implementation against the plain algorithm on generated ones."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractors.rules.scope import MAX_PRE_WORDS, SentenceScope, analyze, assertion_of
from tests.plain_scope import PlainScope


def status(sentence: str, mention: str, occurrence: int = 0) -> str:
    """Assertion of the ``occurrence``-th case-insensitive match of ``mention`` in ``sentence``."""
    lowered, target = sentence.lower(), mention.lower()
    start = -1
    for _ in range(occurrence + 1):
        start = lowered.index(target, start + 1)
    return assertion_of(sentence, start, start + len(mention))


@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("No pleural effusion.", "effusion"),
        ("There is no evidence of pneumothorax.", "pneumothorax"),
        ("Stable cardiomegaly without pulmonary edema.", "edema"),
        ("Negative for acute fracture.", "fracture"),
        ("The lungs are free of focal consolidation.", "consolidation"),
        ("Lungs are clear of infiltrate.", "infiltrate"),
        ("Absence of pleural fluid.", "pleural fluid"),
        ("Interval resolution of the right effusion.", "effusion"),
        ("The heart is not enlarged.", "enlarged"),
        ("NO PNEUMOTHORAX.", "pneumothorax"),
        ("no xxxx of pleural effusion.", "pleural effusion"),
    ],
)
def test_pre_negation(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "negative"


@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("Pneumothorax is not seen.", "pneumothorax"),
        ("A focal consolidation is not identified.", "consolidation"),
        ("The left pleural effusion has resolved.", "effusion"),
        ("Pneumonia was excluded.", "pneumonia"),
        ("Right pneumothorax resolved.", "pneumothorax"),
        ("Pneumothorax no longer visualized.", "pneumothorax"),
    ],
)
def test_post_negation(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "negative"


@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("Opacity may represent atelectasis.", "atelectasis"),
        ("Possible small left effusion.", "effusion"),
        ("Pneumonia cannot be excluded.", "pneumonia"),
        ("Cannot exclude a small pneumothorax.", "pneumothorax"),
        ("Findings suggestive of pulmonary edema.", "edema"),
        ("Questionable nodule in the right upper lobe.", "nodule"),
        ("Opacity most likely atelectasis.", "atelectasis"),
        ("Atelectasis is unlikely.", "atelectasis"),
        ("Small effusions suspected.", "effusions"),
        ("Opacity concerning for pneumonia.", "pneumonia"),
        ("Pneumonia is in the differential.", "pneumonia"),
        ("Edema difficult to entirely exclude.", "edema"),
        ("Difficult to exclude a cavitary lesion.", "lesion"),
    ],
)
def test_uncertainty(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "uncertain"


def test_double_negation_is_uncertain() -> None:
    assert status("Pneumonia is not excluded.", "pneumonia") == "uncertain"
    assert status("Infection not ruled out.", "infection") == "uncertain"
    assert status("A small effusion can not be excluded.", "effusion") == "uncertain"


def test_versus_reaches_both_sides() -> None:
    sentence = "Right basilar atelectasis versus pneumonia."
    assert status(sentence, "atelectasis") == "uncertain"
    assert status(sentence, "pneumonia") == "uncertain"


def test_versus_reaches_only_a_few_words() -> None:
    sentence = "Large right pleural effusion with adjacent opacity, atelectasis versus pneumonia."
    assert status(sentence, "effusion") == "positive"


@pytest.mark.parametrize(
    "sentence",
    [
        "No pleural effusion or pneumothorax.",
        "No focal consolidation, pleural effusion, or pneumothorax.",
        "There is no pneumothorax, large pleural effusion, or focal airspace disease.",
    ],
)
def test_negation_covers_coordinated_findings(sentence: str) -> None:
    assert status(sentence, "pneumothorax") == "negative"
    assert status(sentence, "effusion") == "negative"


@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("There is no pneumothorax but there is a small effusion.", "effusion"),
        ("No pneumothorax; small left effusion.", "effusion"),
        ("Lungs clear, however a small right effusion is present.", "effusion"),
        ("No effusion, although mild atelectasis persists.", "atelectasis"),
        ("No acute abnormality other than mild cardiomegaly.", "cardiomegaly"),
        ("No focal opacity, which excludes pneumonia, except for atelectasis.", "atelectasis"),
        ("Without effusion, there is mild cardiomegaly.", "cardiomegaly"),
    ],
)
def test_terminators_end_scope(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "positive"


def test_nearest_trigger_decides_and_strong_hedge_keeps_scope() -> None:
    sentence = "No effusion, possible pneumonia."
    assert status(sentence, "effusion") == "negative"
    assert status(sentence, "pneumonia") == "uncertain"
    sentence = "Possible small effusion, no pneumothorax."
    assert status(sentence, "effusion") == "uncertain"
    assert status(sentence, "pneumothorax") == "negative"


@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("No suspicious pulmonary nodules or masses.", "nodules"),
        ("There is no focal air space opacity to suggest a pneumonia.", "pneumonia"),
        ("No focal consolidation, suspicious opacity, or definite pleural effusion.", "effusion"),
    ],
)
def test_weak_hedge_inside_negation_stays_negative(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "negative"


@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("No significant change in the left pleural effusion.", "effusion"),
        ("No interval change in bibasilar atelectasis.", "atelectasis"),
        ("Atelectasis without significant interval change.", "atelectasis"),
        ("Note is made of a small effusion.", "effusion"),
        ("Small nodule is noted.", "nodule"),
        ("Mild cardiomegaly is unchanged.", "cardiomegaly"),
        ("Opacity consistent with pneumonia.", "pneumonia"),
    ],
)
def test_pseudo_triggers_and_word_boundaries_stay_positive(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "positive"


def test_pre_scope_has_a_word_limit() -> None:
    filler = " ".join(["word"] * (MAX_PRE_WORDS + 1))
    assert status(f"No {filler} effusion.", "effusion") == "positive"
    near = " ".join(["word"] * (MAX_PRE_WORDS - 2))
    assert status(f"No {near} effusion.", "effusion") == "negative"


def test_governing_reports_the_triggers() -> None:
    sentence = "No evidence of pneumothorax."
    start = sentence.index("pneumothorax")
    before, after = analyze(sentence).governing(start, start + len("pneumothorax"))
    assert before is not None and before.text == "No" and before.kind == "negation"
    assert after is None


def test_case_does_not_matter() -> None:
    for text in (
        "Pneumonia cannot be excluded.",
        "PNEUMONIA CANNOT BE EXCLUDED.",
        "pneumonia cannot be excluded.",
    ):
        assert status(text, "pneumonia") == "uncertain"


def test_offsets_outside_the_sentence_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside the sentence"):
        assertion_of("No effusion.", 5, 40)
    with pytest.raises(ValueError, match="outside the sentence"):
        assertion_of("No effusion.", -1, 2)


# --- a negation denies a noun phrase, not the clause after it --------------------------------
@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("No pneumothorax is seen and a small left effusion persists.", "effusion"),
        (
            "No focal consolidation is identified, small bilateral effusions are present.",
            "effusions",
        ),
        ("There is no pneumothorax, and the cardiac silhouette is enlarged.", "enlarged"),
        ("No infiltrate was found and mild interstitial edema remains.", "edema"),
        (
            "Without free air, the right hemidiaphragm appears elevated by atelectasis.",
            "atelectasis",
        ),
        ("No effusion has been seen, although edema persists.", "edema"),
    ],
)
def test_a_predicate_ends_a_negations_reach(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "positive"


@pytest.mark.parametrize(
    ("sentence", "mention"),
    [
        ("No pleural effusion or pneumothorax is seen.", "pneumothorax"),
        ("No definite focal consolidation, effusion, or pneumothorax is identified.", "effusion"),
        ("No large effusion is present.", "effusion"),
        ("There is no evidence of edema.", "edema"),
    ],
)
def test_a_predicate_after_the_denied_phrase_keeps_it_denied(sentence: str, mention: str) -> None:
    assert status(sentence, mention) == "negative"


@pytest.mark.parametrize(
    ("sentence", "mention", "expected"),
    [
        (
            "No pneumothorax or consolidation, mild bibasilar atelectasis.",
            "atelectasis",
            "positive",
        ),
        ("No effusion or pneumothorax, patchy edema in both bases.", "edema", "positive"),
        ("No pneumothorax or effusion, or focal consolidation.", "consolidation", "negative"),
        ("No effusion, pneumothorax, or consolidation.", "consolidation", "negative"),
        ("No effusion, pneumothorax, and no edema.", "edema", "negative"),
    ],
)
def test_a_comma_after_a_coordinated_list_closes_it(
    sentence: str, mention: str, expected: str
) -> None:
    assert status(sentence, mention) == expected


@pytest.mark.parametrize(
    ("sentence", "mention", "expected"),
    [
        ("No consolidation is seen to suggest pneumonia.", "pneumonia", "negative"),
        ("No opacity is identified that is suspicious for a nodule.", "nodule", "negative"),
        ("Possibly this is pneumonia.", "pneumonia", "uncertain"),
        ("It is not clear whether this is edema.", "edema", "uncertain"),
    ],
)
def test_hedges_keep_reaching_predicates_and_pass_a_denial_on(
    sentence: str, mention: str, expected: str
) -> None:
    assert status(sentence, mention) == expected


# --- the indexed scope against the plain algorithm ------------------------------------------
# Words that exercise every branch: cues of each direction, weak hedges, pseudo-triggers,
# terminators, commas and semicolons, findings, masks and filler; joined by odd whitespace.
_VOCAB = [
    "no",
    "not",
    "without",
    "no longer",
    "negative for",
    "is not seen",
    "resolved",
    "has resolved",
    "cannot be excluded",
    "may",
    "possible",
    "likely",
    "versus",
    "suspected",
    "suspicious for",
    "suggestive of",
    "no suspicious",
    "difficult to exclude",
    "no change in",
    "not changed",
    "but",
    "however",
    "which",
    "there is",
    "other than",
    ",",
    ";",
    ":",
    "effusion",
    "pneumothorax",
    "edema",
    "opacity",
    "nodule",
    "XXXX",
    "small",
    "left",
    "the",
    "of",
    "and",
    "or",
    "lobe",
    "2.5",
    "cm",
    "no,no",
    "effusion,",
    "(possible)",
    "nor",
    "is",
    "are",
    "has been",
    "persists",
    "appears",
    "is seen",
    ", or",
    "to suggest",
]
_SEPARATORS = [" ", "  ", "\t", " , ", "\u00a0"]


@st.composite
def _sentences(draw: st.DrawFn, max_words: int = 30) -> str:
    words = draw(st.lists(st.sampled_from(_VOCAB), min_size=1, max_size=max_words))
    seps = draw(st.lists(st.sampled_from(_SEPARATORS), min_size=len(words), max_size=len(words)))
    return "".join(w + s for w, s in zip(words, seps, strict=True)).strip()


@given(_sentences())
@settings(max_examples=400, deadline=None)
def test_indexed_scope_gives_the_plain_algorithms_answers(sentence: str) -> None:
    fast, plain = SentenceScope(sentence), PlainScope(sentence)
    assert fast.triggers == plain.triggers
    # every word of the sentence as a mention, and a few multi-word spans
    spans = [m.span() for m in re.finditer(r"\S+", sentence)]
    spans += [(a[0], b[1]) for a, b in itertools.pairwise(spans)]
    for start, end in spans:
        assert fast.assertion(start, end) == plain.assertion(start, end), (start, end)


def _random_sentence(rng: random.Random, words: int) -> str:
    """``words`` vocabulary words with random separators: a run-on sentence of any length."""
    return "".join(rng.choice(_VOCAB) + rng.choice(_SEPARATORS) for _ in range(words)).strip()


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=2_000, max_value=20_000))
@settings(max_examples=15, deadline=None)
def test_long_run_on_sentences_finish_with_the_plain_answers(seed: int, words: int) -> None:
    """Thousands of cues in one sentence (no full stop): every mention still gets the answer
    the plain algorithm gives on the short stretch around it (cues reach 14 words at most)."""
    sentence = _random_sentence(random.Random(seed), words)
    scope = SentenceScope(sentence)
    word_spans = [m.span() for m in re.finditer(r"\S+", sentence)]
    step = max(1, len(word_spans) // 60)
    for i in range(0, len(word_spans), step):
        start, end = word_spans[i]
        # 40 words either side hold every cue, terminator and comma that can reach the mention
        lo = word_spans[max(0, i - 40)][0]
        hi = word_spans[min(len(word_spans) - 1, i + 40)][1]
        expected = PlainScope(sentence[lo:hi]).assertion(start - lo, end - lo)
        assert scope.assertion(start, end) == expected, (seed, words, i)
