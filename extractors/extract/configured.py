"""Extractors configured from the settings: the one place where ``RRIEF_*`` values become backend
options, shared by ``rrief extract`` and the pipeline's extract task (both are edges that read
the settings once and call this with the value)."""

from __future__ import annotations

from typing import Any

from extractors.extract.base import Extractor
from extractors.extract.registry import make_extractor
from extractors.schemas import SchemaSpec
from extractors.settings import Settings


def backend_options(
    settings: Settings, backend: str, schema_name: str, **given: Any
) -> dict[str, Any]:
    """Options for ``backend`` from ``settings``; values in ``given`` that are not None win.

    LLM backends get the report type's own adapter (``RRIEF_ADAPTER`` may list one per type);
    the openai backend also gets the endpoint, its bearer key (never on a command line) and the
    egress allow-list; ``hf`` the local base model.
    """
    options: dict[str, Any] = {}
    if backend != "rules":
        options["adapter"] = settings.adapter_for(schema_name) or None
    llm = str(given.get("llm_backend") or "hf") if backend == "cascade" else backend
    if llm == "hf":
        options["base_model"] = settings.base_model or None
    if llm == "openai":
        from extractors.llm.egress import parse_allowed_hosts

        options["endpoint"] = settings.llm_endpoint or None
        options["api_key"] = settings.llm_api_key or None
        options["allowed_hosts"] = parse_allowed_hosts(settings.llm_allowed_hosts)
    options.update({k: v for k, v in given.items() if v is not None})
    return {k: v for k, v in options.items() if v is not None}


def configured_extractor(
    settings: Settings, backend: str, schema: SchemaSpec, **given: Any
) -> Extractor:
    """:func:`make_extractor` with :func:`backend_options` and the report length limit."""
    options = backend_options(settings, backend, schema.name, **given)
    return make_extractor(backend, schema, max_report_chars=settings.max_report_chars, **options)
