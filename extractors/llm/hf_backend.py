"""``--backend hf``: extraction with a local base model in this process, with or without an adapter.

Three modes, recorded in every result's ``extractor.mode``:

* ``adapter`` (``--adapter DIR``): the LoRA adapter with the prompt template it was trained
  with (``rrief_adapter.json``; template 2: compact instruction, sparse answers; template 1 still
  loads: full instruction and full answers);
* ``zero-shot`` (no adapter, ``--base-model DIR``): the base model with the full instruction
  (descriptions and label semantics) and sparse answers: a baseline before anything is annotated;
* ``few-shot`` (``--option few_shot=GOLD.jsonl --option shots=K``): the same with K solved reports
  (:func:`extractors.llm.few_shot.select_shots`, deterministic) before the report.

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

from extractors.extract.base import EvidenceMap, ExtractionError, Extractor, Labels, Outcome
from extractors.extract.registry import BackendError
from extractors.gold import GoldError, GoldExample, load_examples
from extractors.llm.adapters import (
    AdapterError,
    adapter_version,
    base_model_fingerprint,
    load_adapter_metadata,
    verify_schema,
)
from extractors.llm.engine import Generation, HFEngine
from extractors.llm.few_shot import select_shots
from extractors.llm.json_bounds import max_new_tokens_for_schema
from extractors.llm.prompts import (
    ADAPTER_FORMAT,
    BASE_MODEL_FORMAT,
    PROMPT_TEMPLATE_VERSIONS,
    PromptFormat,
    adapter_format,
    answer_json_schema,
    build_messages,
    parse_answer,
)
from extractors.results import ExtractorInfo, ReportInput
from extractors.schemas import LabelValidationError, SchemaSpec

log = logging.getLogger("rrief.llm")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_labels(schema: SchemaSpec, text: str, fmt: PromptFormat = ADAPTER_FORMAT) -> Labels:
    """Answer text → validated labels; :class:`ExtractionError` (with the raw text) otherwise."""
    try:
        return parse_answer(schema, text, fmt)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"model output is not valid JSON ({exc.msg} at char {exc.pos})", raw_output=text
        ) from None
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
        adapter: str | Path | None = None,
        base_model: str | Path | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        max_new_tokens: int | None = None,
        constrained: bool = True,
        engine: HFEngine | None = None,
        shots: Sequence[GoldExample] = (),
    ) -> None:
        super().__init__(schema)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.shots = [(e.text, e.labels) for e in shots]
        if adapter is not None:
            if self.shots:
                raise ValueError(
                    "few-shot examples are for the base model without an adapter; drop --adapter "
                    "or the few_shot option"
                )
            adapter_dir = Path(adapter).expanduser().resolve()
            metadata = load_adapter_metadata(adapter_dir)
            verify_schema(metadata, schema.id, adapter_dir)
            if metadata.prompt_template_version not in PROMPT_TEMPLATE_VERSIONS:
                raise AdapterError(
                    f"adapter {adapter_dir} was trained with prompt template version "
                    f"{metadata.prompt_template_version}; this rrief knows "
                    f"{', '.join(PROMPT_TEMPLATE_VERSIONS)}: retrain it"
                )
            self.engine = engine or HFEngine(
                base_model or metadata.base_model.path, device=device, dtype=dtype
            )
            self.adapter_name: str | None = adapter_dir.name
            if self.adapter_name not in self.engine.adapter_names:
                self.engine.load_adapter(self.adapter_name, adapter_dir)
            self.fmt = adapter_format(metadata.prompt_template_version)
            self.mode = "adapter"
            self._version = adapter_version(adapter_dir, metadata)
        else:
            if base_model is None and engine is None:
                raise ValueError(
                    "the hf backend needs --adapter DIR (made by `rrief train`) or, for zero-/few-"
                    "shot extraction with the base model alone, --base-model DIR"
                )
            self.engine = engine or HFEngine(base_model, device=device, dtype=dtype)  # type: ignore[arg-type]
            self.adapter_name = None
            self.fmt = BASE_MODEL_FORMAT
            self.mode = "few-shot" if self.shots else "zero-shot"
            sha = base_model_fingerprint(self.engine.base_model_path).sha256[:12]
            suffix = f"+{len(self.shots)}shot" if self.shots else ""
            self._version = f"{self.engine.base_model_path.name}@{sha}{suffix}"
        self.json_schema = answer_json_schema(schema, self.fmt)
        self.max_new_tokens = max_new_tokens or max_new_tokens_for_schema(self.json_schema)
        self.batch_size = batch_size
        self.constrained = constrained

    @property
    def version(self) -> str:
        return self._version

    @property
    def info(self) -> ExtractorInfo:
        return ExtractorInfo(backend=self.backend, version=self.version, mode=self.mode)

    def prompt(self, text: str) -> str:
        """The rendered prompt for one report (instruction, shots, report) in this mode."""
        return self.engine.render_chat(build_messages(self.schema, text, self.fmt, self.shots))

    def extract_many(self, reports: Sequence[ReportInput]) -> list[Outcome]:
        out: list[Outcome] = []
        for start in range(0, len(reports), self.batch_size):
            out.extend(self._extract_chunk(reports[start : start + self.batch_size]))
        return out

    def _generate(self, prompts: list[str], constrained: bool, budget: int) -> list[Generation]:
        schema = self.json_schema if constrained else None
        return self.engine.generate(
            prompts, adapter=self.adapter_name, json_schema=schema, max_new_tokens=budget
        )

    def _extract_chunk(self, reports: Sequence[ReportInput]) -> list[Outcome]:
        prompts = [self.prompt(r.text) for r in reports]
        results: list[Outcome] = []
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
            return parse_labels(self.schema, gen.text, self.fmt), {}
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
    """Registry factory (``--backend hf [--adapter DIR] [--base-model DIR] [--option k=v]``).

    Options: ``batch_size``, ``max_new_tokens``, ``device``, ``dtype``, ``constrained``,
    ``few_shot`` (gold JSONL of solved reports) and ``shots`` (how many, default 5 with
    ``few_shot``). Bad options and unusable adapters raise :class:`BackendError`.
    """
    try:
        return _make(schema, adapter, base_model, opts)
    except (AdapterError, GoldError, ValueError, FileNotFoundError) as exc:
        raise BackendError(str(exc)) from None


_KNOWN_OPTIONS = {
    "batch_size",
    "max_new_tokens",
    "device",
    "dtype",
    "constrained",
    "few_shot",
    "shots",
}


def _int_option(opts: dict[str, Any], key: str) -> int:
    try:
        return int(opts[key])
    except ValueError:
        raise ValueError(f"option {key}={opts[key]!r} must be an integer") from None


def _make(
    schema: SchemaSpec, adapter: str | None, base_model: str | None, opts: dict[str, Any]
) -> HFExtractor:
    unknown = sorted(set(opts) - _KNOWN_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown hf backend option(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(_KNOWN_OPTIONS))}"
        )
    kwargs: dict[str, Any] = {}
    for key in ("batch_size", "max_new_tokens"):
        if key in opts:
            kwargs[key] = _int_option(opts, key)
    for key in ("device", "dtype"):
        if key in opts:
            kwargs[key] = str(opts[key])
    if "constrained" in opts:
        kwargs["constrained"] = _as_bool("constrained", opts["constrained"])
    if "shots" in opts and "few_shot" not in opts:
        raise ValueError("option shots needs few_shot=GOLD.jsonl (the solved reports to pick from)")
    if "few_shot" in opts:
        k = _int_option(opts, "shots") if "shots" in opts else 5
        examples = load_examples(Path(str(opts["few_shot"])), schema, "jsonl")[0]
        kwargs["shots"] = select_shots(schema, examples, k)
    return HFExtractor(schema, adapter, base_model, **kwargs)
