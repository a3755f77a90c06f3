"""``--backend cascade``: the rules label every report, an LLM re-labels only the hard ones.

Rules are fast, explainable and right on the plain reports; an LLM costs a GPU second per
report. The cascade runs the rules on everything and sends a report on to the LLM backend
(``hf`` by default, or ``openai``) only when :func:`route` finds a reason to doubt the rules:

* ``uncertain``: the rules left a label ``uncertain`` (hedged language is where they err most);
* ``unresolved``: a finding's phrase occurs in the text but its label stayed at the default,
  i.e. a term the rules matched and then explained away or could not place (CXR only: other
  schemas have no phrase list to compare with, so this reason never fires for them);
* ``long``: the text is longer than ``max_chars`` (long reports mix sections, comparisons and
  several findings per sentence);
* ``rules_error``: the rules produced no labels at all.

Every result records the part that decided in ``extractor`` (``rules`` or the LLM's backend,
version and mode), so the share routed can be counted from any output file. When the LLM fails
on a routed report, the rules' labels stand (the cascade is never worse than its first stage
because of an LLM error) and the rules are named as having decided.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from extractors.extract.base import Extractor, Labels, Outcome
from extractors.extract.registry import BackendError, make_extractor
from extractors.results import ReportInput
from extractors.schemas import SchemaSpec

log = logging.getLogger("rrief.extract")

DEFAULT_MAX_CHARS = 1000
LLM_BACKENDS = ("hf", "openai")


@dataclass(frozen=True)
class RoutingPolicy:
    """When the cascade asks the LLM (see the module docstring); each reason can be switched off."""

    uncertain: bool = True
    unresolved: bool = True
    max_chars: int | None = DEFAULT_MAX_CHARS


def _mentioned(schema: SchemaSpec, text: str) -> set[str]:
    if schema.name != "cxr":
        return set()
    from extractors.rules.cxr import mentioned_findings

    return mentioned_findings(text)


def route(
    schema: SchemaSpec, text: str, labels: Labels | None, policy: RoutingPolicy = RoutingPolicy()
) -> list[str]:
    """Why the LLM should see this report (empty: the rules decide). ``labels``: the rules' own."""
    if labels is None:
        return ["rules_error"]
    reasons: list[str] = []
    values = [
        v
        for value in labels.values()
        for v in (value.values() if isinstance(value, dict) else [value])
    ]
    if policy.uncertain and "uncertain" in values:
        reasons.append("uncertain")
    if policy.unresolved:
        defaults = {f.name: schema.default_value(f) for f in schema.fields}
        if any(labels.get(name) == defaults.get(name) for name in _mentioned(schema, text)):
            reasons.append("unresolved")
    if policy.max_chars is not None and len(text) > policy.max_chars:
        reasons.append("long")
    return reasons


class CascadeExtractor(Extractor):
    """Rules for every report, ``llm`` for the reports :func:`route` sends on."""

    backend = "cascade"

    def __init__(
        self, schema: SchemaSpec, rules: Extractor, llm: Extractor, policy: RoutingPolicy
    ) -> None:
        super().__init__(schema)
        self.rules, self.llm, self.policy = rules, llm, policy
        self.routed = 0
        self.seen = 0

    @property
    def version(self) -> str:
        return f"{self.rules.version}+{self.llm.backend}:{self.llm.version}"

    def extract_many(self, reports: Sequence[ReportInput]) -> list[Outcome]:
        first = self.rules.extract_many(reports)
        rules_info = self.rules.info
        out: list[Outcome] = []
        hard: list[int] = []
        for i, (report, outcome) in enumerate(zip(reports, first, strict=True)):
            labels = None if isinstance(outcome, Exception) else outcome[0]
            if route(self.schema, report.text, labels, self.policy):
                hard.append(i)
            out.append(outcome if isinstance(outcome, Exception) else (*outcome[:2], rules_info))
        self.seen += len(reports)
        self.routed += len(hard)
        if hard:
            second = self.llm.extract_many([reports[i] for i in hard])
            llm_info = self.llm.info
            failed = 0
            for i, outcome in zip(hard, second, strict=True):
                if isinstance(outcome, Exception):
                    failed += 1  # the rules' labels stand (or their error, if they had none)
                    continue
                out[i] = (*outcome[:2], llm_info)
            log.info(
                "cascade: %d of %d reports sent to the %s backend (%d failed there: rules kept)",
                len(hard),
                len(reports),
                self.llm.backend,
                failed,
            )
        return out


def make_cascade_extractor(
    schema: SchemaSpec,
    llm_backend: str = "hf",
    max_chars: Any = DEFAULT_MAX_CHARS,
    **llm_options: Any,
) -> CascadeExtractor:
    """Registry factory: ``--backend cascade [--option llm_backend=openai] [--option max_chars=N]``;
    every other option (``--adapter``, ``--base-model``, ...) goes to the LLM backend."""
    if llm_backend not in LLM_BACKENDS:
        raise BackendError(f"cascade llm_backend must be one of {', '.join(LLM_BACKENDS)}")
    try:
        limit = int(max_chars)
    except (TypeError, ValueError):
        raise BackendError(f"option max_chars={max_chars!r} must be an integer") from None
    rules = make_extractor("rules", schema)
    llm = make_extractor(llm_backend, schema, **llm_options)
    return CascadeExtractor(schema, rules, llm, RoutingPolicy(max_chars=limit))
