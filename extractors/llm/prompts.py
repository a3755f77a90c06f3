"""The prompts every LLM path uses: training, the hf backend, the openai backend and serve.

Two prompt template versions exist; an adapter records the one it was trained with
(``rrief_adapter.json``) and inference uses exactly that one:

* ``"1"``: the full instruction (task, schema description, label semantics, output rules) and
  the full answer (every field, schema order).
* ``"2"`` (current): **sparse answers** (only the fields that differ from the default, schema
  order: :mod:`extractors.llm.sparse`) and, for adapters, a **compact instruction** (schema id and
  field names, tens of tokens instead of ~750): a fine-tuned adapter has learned the semantics,
  so the long instruction only costs training and inference time. The full instruction stays for
  the base model without an adapter (zero-shot and few-shot), which has to be told everything.

The instruction is a FIXED first message that depends only on the schema (and the few-shot
examples), so a server's prefix cache can reuse it across reports; the report is the last user
message. Changing any text here changes what adapters were trained on: add a template version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from extractors.llm.sparse import parse_sparse, sparse_json, sparse_json_schema
from extractors.schemas import SchemaSpec

PROMPT_TEMPLATE_VERSION = "2"
PROMPT_TEMPLATE_VERSIONS = ("1", "2")

InstructionKind = Literal["compact", "full"]

_INSTRUCTION = (
    "You extract structured labels from a radiology report.\n"
    "Answer with one compact JSON object and nothing else: every field below, in this order, "
    "with only the allowed values.\n\n"
    "{description}\n\n"
    "Label semantics: {semantics}"
)
_INSTRUCTION_V2 = (
    "You extract structured labels from a radiology report.\n"
    "Answer with one compact JSON object and nothing else. Write ONLY the fields whose value "
    "differs from its default, in the order below, with only the allowed values; {{}} when "
    "everything is at its default. Defaults: {defaults}.\n\n"
    "{description}\n\n"
    "Label semantics: {semantics}"
)
_COMPACT_V2 = "{schema_id} labels, JSON of the non-default fields only, in this order: {fields}"


@dataclass(frozen=True)
class PromptFormat:
    """Which template version and which instruction (compact for adapters, full for the base model)."""

    version: str = PROMPT_TEMPLATE_VERSION
    instruction: InstructionKind = "compact"

    def __post_init__(self) -> None:
        if self.version not in PROMPT_TEMPLATE_VERSIONS:
            raise ValueError(
                f"unknown prompt template version {self.version!r}; this rrief knows "
                f"{', '.join(PROMPT_TEMPLATE_VERSIONS)}"
            )

    @property
    def sparse(self) -> bool:
        return self.version != "1"


ADAPTER_FORMAT = PromptFormat()
BASE_MODEL_FORMAT = PromptFormat(instruction="full")


def adapter_format(version: str) -> PromptFormat:
    """The format an adapter trained with template ``version`` expects."""
    return PromptFormat(version=version, instruction="full" if version == "1" else "compact")


# Plain fallback for base models without a chat template (documented: roles as headers, the
# answer starts after the final "### Answer" line). Used identically in training and inference.
_PLAIN_ROLE_HEADERS = {"system": "### Instruction", "user": "### Report", "assistant": "### Answer"}

Message = dict[str, str]


class _ChatTokenizer(Protocol):
    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def _semantics(schema: SchemaSpec) -> str:
    return " ".join(schema.semantics.split()) or "as described above."


def _defaults(schema: SchemaSpec) -> str:
    """``not_mentioned for every field`` or a short list grouped by default value."""
    groups: dict[str, list[str]] = {}
    for f in schema.fields:
        groups.setdefault(json.dumps(schema.default_value(f)), []).append(f.name)
    if len(groups) == 1:
        return f"{next(iter(groups))} for every field"
    return "; ".join(f"{value} for {', '.join(names)}" for value, names in groups.items())


def instruction(schema: SchemaSpec, fmt: PromptFormat = BASE_MODEL_FORMAT) -> str:
    """The fixed system message for ``schema`` in ``fmt`` (identical for every report)."""
    if fmt.version == "1":
        return _INSTRUCTION.format(description=schema.describe(), semantics=_semantics(schema))
    if fmt.instruction == "compact":
        return _COMPACT_V2.format(schema_id=schema.id, fields=", ".join(schema.field_names))
    return _INSTRUCTION_V2.format(
        defaults=_defaults(schema), description=schema.describe(), semantics=_semantics(schema)
    )


def build_messages(
    schema: SchemaSpec,
    report_text: str,
    fmt: PromptFormat = ADAPTER_FORMAT,
    shots: Sequence[tuple[str, dict[str, Any]]] = (),
) -> list[Message]:
    """Chat messages: the fixed instruction first (prefix-cache friendly), then the report.

    ``shots`` (few-shot: solved reports as ``(text, labels)``) come between them as
    user/assistant turns whose answers are written exactly as the model should answer.
    """
    messages = [{"role": "system", "content": instruction(schema, fmt)}]
    for text, labels in shots:
        messages.append({"role": "user", "content": text})
        messages.append({"role": "assistant", "content": target_text(schema, labels, fmt)})
    messages.append({"role": "user", "content": report_text})
    return messages


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: Any, messages: list[Message]) -> str:
    """The prompt text up to where the model's answer starts.

    With a chat template: ``apply_chat_template(..., add_generation_prompt=True)``. Without one:
    each message under a ``### <Role>`` header, ending with ``### Answer\\n``.
    """
    if has_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)
    parts = [
        f"{_PLAIN_ROLE_HEADERS.get(m['role'], '### ' + m['role'].title())}\n{m['content']}\n"
        for m in messages
    ]
    parts.append(f"{_PLAIN_ROLE_HEADERS['assistant']}\n")
    return "\n".join(parts)


def target_text(
    schema: SchemaSpec, labels: dict[str, Any], fmt: PromptFormat = ADAPTER_FORMAT
) -> str:
    """The answer for ``labels``: sparse JSON (template 2) or the full canonical JSON (1)."""
    return sparse_json(schema, labels) if fmt.sparse else schema.canonical_json(labels)


def answer_json_schema(schema: SchemaSpec, fmt: PromptFormat = ADAPTER_FORMAT) -> dict[str, Any]:
    """The JSON Schema that constrains an answer in ``fmt``."""
    return sparse_json_schema(schema) if fmt.sparse else schema.json_schema()


def parse_answer(
    schema: SchemaSpec, text: str, fmt: PromptFormat = ADAPTER_FORMAT
) -> dict[str, Any]:
    """Answer text → validated full labels (sparse answers get their defaults filled).

    Raises ``json.JSONDecodeError`` or :class:`extractors.schemas.LabelValidationError`.
    """
    if fmt.sparse:
        return parse_sparse(schema, text)
    return schema.validate_labels(json.loads(text))
