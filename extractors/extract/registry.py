"""Pick a backend by name. Backends register themselves lazily so heavy imports (torch) stay
out of the rules path."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from extractors.extract.base import Extractor
from extractors.schemas import SchemaSpec

# backend name -> "module:factory"; the factory takes (schema, **options) and returns an Extractor
BACKENDS: dict[str, str] = {
    "rules": "extractors.rules:make_rule_extractor",
    "hf": "extractors.llm.hf_backend:make_hf_extractor",
    "openai": "extractors.llm.openai_backend:make_openai_extractor",
    "cascade": "extractors.extract.cascade:make_cascade_extractor",
}


class BackendError(ValueError):
    """The backend is unknown, unavailable here, or cannot serve this schema."""


def register_backend(name: str, target: str) -> None:
    BACKENDS[name] = target


def make_extractor(
    backend: str, schema: SchemaSpec, *, max_report_chars: int | None = None, **options: Any
) -> Extractor:
    """Build the extractor for ``backend`` and ``schema`` (options are backend-specific).

    ``max_report_chars`` (default: the settings' default) bounds the text any backend accepts.
    """
    if backend not in BACKENDS:
        raise BackendError(
            f"unknown backend {backend!r}; choose from {', '.join(sorted(BACKENDS))}"
        )
    module_name, factory_name = BACKENDS[backend].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(
            f"backend {backend!r} needs packages that are not installed ({exc.name}); "
            "install the project with its LLM extras: pip install 'rrief[llm]'"
        ) from None
    factory: Callable[..., Extractor] = getattr(module, factory_name)
    extractor = factory(schema, **options)
    if max_report_chars is not None:
        extractor.max_report_chars = max_report_chars
    return extractor
