"""``--backend hf``: extraction with a LoRA adapter on a local base model, in this process.

Reports are batched through :class:`extractors.llm.engine.HFEngine` (left padding, greedy),
decoding constrained to the schema's JSON Schema with a token budget derived from the schema
(:mod:`extractors.llm.json_bounds`), then parsed and validated by the schema.

Retry policy: greedy constrained decoding is deterministic, so repeating it unchanged would
only repeat the failure. The one failure it can have is running out of tokens, so the retry
doubles the token budget. With ``constrained=False`` (a debugging option: see what the adapter
writes on its own) the first pass is free and the retry is constrained. A report still invalid
after the retry becomes an error line with the raw model output kept in ``raw_output`` (never
logged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from extractors.extract.base import EvidenceMap, ExtractionError, Extractor, Labels
from extractors.extract.registry import BackendError
from extractors.llm.adapters import (
    AdapterError,
    adapter_version,
    load_adapter_metadata,
    verify_schema,
)
from extractors.llm.engine import Generation, HFEngine
from extractors.llm.json_bounds import max_new_tokens_for_schema
from extractors.llm.prompts import PROMPT_TEMPLATE_VERSION, build_messages
from extractors.results import ReportInput
from extractors.schemas import LabelValidationError, SchemaSpec

log = logging.getLogger("rrief.llm")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_labels(schema: SchemaSpec, text: str) -> Labels:
    """JSON text → validated labels; :class:`ExtractionError` (with the raw text) otherwise."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"model output is not valid JSON ({exc.msg} at char {exc.pos})", raw_output=text
        ) from None
    try:
        return schema.validate_labels(data)
    except LabelValidationError as exc:
        raise ExtractionError(
            f"model output does not match the schema: {exc}", raw_output=text
        ) from None


class HFExtractor(Extractor):
    """Batched, JSON-constrained extraction with one adapter (see the module docstring)."""

    backend = "hf"

    def __init__(
        self,
        schema: SchemaSpec,
        adapter: str | Path,
        base_model: str | Path | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        max_new_tokens: int | None = None,
        constrained: bool = True,
        engine: HFEngine | None = None,
    ) -> None:
        super().__init__(schema)
        adapter_dir = Path(adapter).expanduser().resolve()
        metadata = load_adapter_metadata(adapter_dir)
        verify_schema(metadata, schema.id, adapter_dir)
        if metadata.prompt_template_version != PROMPT_TEMPLATE_VERSION:
            raise AdapterError(
                f"adapter {adapter_dir} was trained with prompt template version "
                f"{metadata.prompt_template_version}, this rrief uses {PROMPT_TEMPLATE_VERSION}; retrain it"
            )
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.engine = engine or HFEngine(
            base_model or metadata.base_model.path, device=device, dtype=dtype
        )
        self.adapter_name = adapter_dir.name
        if self.adapter_name not in self.engine.adapter_names:
            self.engine.load_adapter(self.adapter_name, adapter_dir)
        self.metadata = metadata
        self._version = adapter_version(adapter_dir, metadata)
        self.json_schema = schema.json_schema()
        self.max_new_tokens = max_new_tokens or max_new_tokens_for_schema(self.json_schema)
        self.batch_size = batch_size
        self.constrained = constrained

    @property
    def version(self) -> str:
        return self._version

    def extract_many(
        self, reports: Sequence[ReportInput]
    ) -> list[tuple[Labels, EvidenceMap] | Exception]:
        out: list[tuple[Labels, EvidenceMap] | Exception] = []
        for start in range(0, len(reports), self.batch_size):
            out.extend(self._extract_chunk(reports[start : start + self.batch_size]))
        return out

    def _generate(self, prompts: list[str], constrained: bool, budget: int) -> list[Generation]:
        schema = self.json_schema if constrained else None
        return self.engine.generate(
            prompts, adapter=self.adapter_name, json_schema=schema, max_new_tokens=budget
        )

    def _extract_chunk(
        self, reports: Sequence[ReportInput]
    ) -> list[tuple[Labels, EvidenceMap] | Exception]:
        prompts = [self.engine.render_chat(build_messages(self.schema, r.text)) for r in reports]
        results: list[tuple[Labels, EvidenceMap] | Exception] = []
        for gen in self._generate(prompts, self.constrained, self.max_new_tokens):
            results.append(self._parse(gen))
        failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
        if failed:
            log.info(
                "retrying %d of %d reports with constrained decoding and a doubled budget",
                len(failed),
                len(reports),
            )
            retry = self._generate([prompts[i] for i in failed], True, 2 * self.max_new_tokens)
            for i, gen in zip(failed, retry, strict=True):
                outcome = self._parse(gen)
                if isinstance(outcome, ExtractionError):
                    first = results[i]
                    note = f"; first attempt: {first}" if isinstance(first, Exception) else ""
                    outcome = ExtractionError(
                        f"after one retry, {outcome}{note}", raw_output=outcome.raw_output
                    )
                    log.warning("report %s: model output invalid after retry", reports[i].report_id)
                results[i] = outcome
        return results

    def _parse(self, gen: Generation) -> tuple[Labels, EvidenceMap] | Exception:
        if gen.finish_reason == "length":
            return ExtractionError(
                f"model output was cut off at {gen.completion_tokens} tokens (max_new_tokens)",
                raw_output=gen.text,
            )
        try:
            return parse_labels(self.schema, gen.text), {}
        except ExtractionError as exc:
            return exc


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"option {name}={value!r} must be true or false")


def make_hf_extractor(
    schema: SchemaSpec, adapter: str | None = None, base_model: str | None = None, **opts: Any
) -> HFExtractor:
    """Registry factory (``--backend hf --adapter DIR [--base-model DIR] [--option k=v]``).

    Options: ``batch_size``, ``max_new_tokens``, ``device``, ``dtype``, ``constrained``.
    Bad options and unusable adapters raise :class:`BackendError` (the CLI prints its message).
    """
    try:
        return _make(schema, adapter, base_model, opts)
    except (AdapterError, ValueError, FileNotFoundError) as exc:
        raise BackendError(str(exc)) from None


def _make(
    schema: SchemaSpec, adapter: str | None, base_model: str | None, opts: dict[str, Any]
) -> HFExtractor:
    if not adapter:
        raise ValueError("the hf backend needs --adapter DIR (a directory made by `rrief train`)")
    known = {"batch_size", "max_new_tokens", "device", "dtype", "constrained"}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ValueError(
            f"unknown hf backend option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    for key in ("batch_size", "max_new_tokens"):
        if key in opts:
            try:
                kwargs[key] = int(opts[key])
            except ValueError:
                raise ValueError(f"option {key}={opts[key]!r} must be an integer") from None
    for key in ("device", "dtype"):
        if key in opts:
            kwargs[key] = str(opts[key])
    if "constrained" in opts:
        kwargs["constrained"] = _as_bool("constrained", opts["constrained"])
    return HFExtractor(schema, adapter, base_model, **kwargs)
