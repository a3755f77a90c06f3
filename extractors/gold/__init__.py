"""Every gold and annotation format in one package: readers, dataset exports, training examples.

``rrief evaluate`` scores against a :class:`GoldSet` from :func:`load_gold`; ``rrief train`` reads
:class:`GoldExample` lists from :func:`load_examples`; ``rrief datasets export`` writes the
public sets as extract input. Every reader raises :class:`GoldError`, which callers wrap.
"""

from extractors.gold.base import CXR_FINDINGS, FOUR_STATES, GoldError, GoldKind, GoldSet
from extractors.gold.examples import (
    PARTIAL_GOLD_WARNING,
    TRAIN_GOLD_FORMATS,
    GoldExample,
    load_examples,
    load_jsonl_examples,
)
from extractors.gold.formats import GOLD_FORMATS, guess_gold_format, load_gold
from extractors.gold.jsonl import iter_gold_jsonl

__all__ = [
    "CXR_FINDINGS",
    "FOUR_STATES",
    "GOLD_FORMATS",
    "PARTIAL_GOLD_WARNING",
    "TRAIN_GOLD_FORMATS",
    "GoldError",
    "GoldExample",
    "GoldKind",
    "GoldSet",
    "guess_gold_format",
    "iter_gold_jsonl",
    "load_examples",
    "load_gold",
    "load_jsonl_examples",
]
