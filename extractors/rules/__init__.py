"""Rule-based extractors: the baselines and the embedded default backend."""

from __future__ import annotations

import importlib

from extractors.extract.base import Extractor
from extractors.extract.registry import BackendError
from extractors.schemas import SchemaSpec

# schema name -> "module:class"; a site schema without rules must use an LLM backend.
RULE_EXTRACTORS: dict[str, str] = {
    "cxr": "extractors.rules.cxr:CxrRuleExtractor",
    "mammo": "extractors.rules.mammo:MammoRuleExtractor",
    "ccta": "extractors.rules.ccta:CctaRuleExtractor",
}


def make_rule_extractor(schema: SchemaSpec, **options: object) -> Extractor:
    """The rule extractor for ``schema`` (rules take no options)."""
    if options:
        raise BackendError(f"the rules backend takes no options, got {', '.join(options)}")
    target = RULE_EXTRACTORS.get(schema.name)
    if target is None:
        raise BackendError(
            f"no rules exist for schema {schema.id}; rules cover {', '.join(sorted(RULE_EXTRACTORS))}. "
            "Use an LLM backend (--backend hf or openai) with an adapter trained for this schema."
        )
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(schema)
