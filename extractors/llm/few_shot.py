"""Few-shot examples for the base model: K solved reports chosen deterministically from a gold set.

The choice must not depend on file order or chance, or two runs of the same command would
prompt differently. :func:`select_shots` orders the candidates by a hash of their report id
(stable, order-free), keeps the shorter half (every shot is paid for in every prompt), then
picks greedily the example that shows the most field values not shown yet (so K examples cover
as many findings and states as they can); ties go to the shorter text, then the hash. With a
normal report among the candidates, one all-default example is part of the set (the model must
see that ``{}`` is an answer too) once the values are covered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from extractors.gold import GoldExample
from extractors.llm.sparse import sparse_labels
from extractors.schemas import SchemaSpec


def _values(schema: SchemaSpec, example: GoldExample) -> set[str]:
    """The non-default (field, key, value) triples of an example, as strings."""
    out: set[str] = set()
    for name, value in sparse_labels(schema, example.labels).items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        for key, v in items:
            out.add(json.dumps([name, key, v]))
    return out


def _hash(report_id: str) -> str:
    return hashlib.sha256(report_id.encode("utf-8")).hexdigest()


def select_shots(schema: SchemaSpec, examples: Sequence[GoldExample], k: int) -> list[GoldExample]:
    """``k`` examples from ``examples`` (see the module docstring); fewer if there are fewer."""
    if k < 0:
        raise ValueError("the number of shots must be >= 0")
    if k == 0 or not examples:
        return []
    ordered = sorted(examples, key=lambda e: _hash(e.report_id))
    lengths = sorted(len(e.text) for e in ordered)
    cutoff = lengths[len(lengths) // 2]
    pool = [e for e in ordered if len(e.text) <= cutoff] or ordered
    shown = {e.report_id: _values(schema, e) for e in pool}
    chosen: list[GoldExample] = []
    covered: set[str] = set()
    have_default = False
    while len(chosen) < min(k, len(pool)):
        rest = [e for e in pool if e not in chosen]
        best = max(rest, key=lambda e: (len(shown[e.report_id] - covered), -len(e.text)))
        if not shown[best.report_id] - covered and not have_default:
            defaults = [e for e in rest if not shown[e.report_id]]
            if defaults:
                best = min(defaults, key=lambda e: len(e.text))
        have_default = have_default or not shown[best.report_id]
        covered |= shown[best.report_id]
        chosen.append(best)
    return chosen
