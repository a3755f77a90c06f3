"""The one prompt every LLM path uses: training, the hf backend, the openai backend and serve.

The instruction (task, schema description, label semantics, output rules) is a FIXED first
message that depends only on the schema, so a server's prefix cache can reuse it across
reports; the report alone is the second (user) message. Changing any text here changes what
adapters were trained on: bump :data:`PROMPT_TEMPLATE_VERSION` (adapters record it and the hf
backend refuses a mismatch).
"""

from __future__ import annotations

from typing import Any, Protocol

from extractors.schemas import SchemaSpec

PROMPT_TEMPLATE_VERSION = "1"

_INSTRUCTION = (
    "You extract structured labels from a radiology report.\n"
    "Answer with one compact JSON object and nothing else: every field below, in this order, "
    "with only the allowed values.\n\n"
    "{description}\n\n"
    "Label semantics: {semantics}"
)

# Plain fallback for base models without a chat template (documented: roles as headers, the
# answer starts after the final "### Answer" line). Used identically in training and inference.
_PLAIN_ROLE_HEADERS = {"system": "### Instruction", "user": "### Report", "assistant": "### Answer"}

Message = dict[str, str]


class _ChatTokenizer(Protocol):
    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def instruction(schema: SchemaSpec) -> str:
    """The fixed system message for ``schema`` (identical for every report)."""
    semantics = " ".join(schema.semantics.split()) or "as described above."
    return _INSTRUCTION.format(description=schema.describe(), semantics=semantics)


def build_messages(schema: SchemaSpec, report_text: str) -> list[Message]:
    """Chat messages: the fixed instruction first (prefix-cache friendly), then the report."""
    return [
        {"role": "system", "content": instruction(schema)},
        {"role": "user", "content": report_text},
    ]


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


def target_text(schema: SchemaSpec, labels: dict[str, Any]) -> str:
    """The training answer: the labels' canonical compact JSON (schema key order)."""
    return schema.canonical_json(labels)
