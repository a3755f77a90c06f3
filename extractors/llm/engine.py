"""The in-process LLM engine: a local base model, several LoRA adapters, batched greedy decoding.

One ``HFEngine`` holds one base model (transformers, loaded from a local directory only, never
the hub) and any number of named peft LoRA adapters on it; each ``generate`` call picks one
adapter (or none) and optionally constrains the output to a JSON Schema. The hf backend and
``rrief serve`` are both built on it. Not thread-safe: callers serialise calls (serve uses a lock).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessorList

from extractors.llm import constrained
from extractors.llm.adapters import (
    METADATA_FILE,
    AdapterError,
    load_adapter_metadata,
    verify_base_model,
)
from extractors.llm.prompts import render_prompt

log = logging.getLogger("rrief.llm")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Generation:
    """One completion: text without special tokens, token counts, why it stopped."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end-of-sequence) | "length" (max_new_tokens reached)


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a rendered prompt; BOS is added only if the text does not already start with it
    (chat templates usually write BOS themselves). Training and inference both use this."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def resolve_device(device: str | None) -> str:
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """``None``/``auto``: bfloat16 on GPU, float32 on CPU (CPU half precision is slow and lossy)."""
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


class HFEngine:
    """A local base model with named LoRA adapters; batched, optionally JSON-constrained generation."""

    def __init__(
        self,
        base_model: str | Path,
        adapters: dict[str, str | Path] | None = None,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        self.base_model_path = Path(base_model).expanduser().resolve()
        if not (self.base_model_path / "config.json").is_file():
            raise FileNotFoundError(
                f"base model directory {self.base_model_path} has no config.json"
            )
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.base_model_path, local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # On a GPU, load the weights straight onto it (no full copy in CPU memory first).
        placement = {"device_map": {"": self.device}} if self.device.startswith("cuda") else {}
        self.model: Any = AutoModelForCausalLM.from_pretrained(
            self.base_model_path,
            local_files_only=True,
            dtype=resolve_dtype(dtype, self.device),
            **placement,
        ).to(self.device)
        self.model.eval()
        self.eos_token_ids = self._eos_ids()
        self._adapters: dict[str, Path] = {}
        self._tokenizer_data: Any = None
        self._enforcers: dict[str, Any] = {}
        for name, path in (adapters or {}).items():
            self.load_adapter(name, path)

    # -- adapters -----------------------------------------------------------------------------
    @property
    def adapter_names(self) -> list[str]:
        return list(self._adapters)

    def adapter_path(self, name: str) -> Path:
        return self._adapters[name]

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Attach the LoRA adapter at ``path`` under ``name``.

        When the adapter has ``rrief_adapter.json``, its base-model fingerprint must match this
        engine's base model (:class:`AdapterError` otherwise, naming both).
        """
        from peft import PeftModel

        adapter_dir = Path(path).expanduser().resolve()
        if name in self._adapters:
            raise AdapterError(f"an adapter named {name!r} is already loaded")
        if not (adapter_dir / "adapter_config.json").is_file():
            raise AdapterError(
                f"{adapter_dir} has no adapter_config.json: not a LoRA adapter directory"
            )
        if (adapter_dir / METADATA_FILE).is_file():
            verify_base_model(load_adapter_metadata(adapter_dir), self.base_model_path, adapter_dir)
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(
                self.model, str(adapter_dir), adapter_name=name, is_trainable=False
            )
        self.model.eval()
        self._adapters[name] = adapter_dir
        log.info("loaded adapter %s from %s", name, adapter_dir)

    def unload_adapter(self, name: str) -> None:
        """Detach the adapter ``name`` (KeyError when none is loaded under it); the last one
        leaves the bare base model."""
        if name not in self._adapters:
            raise KeyError(f"no adapter {name!r} is loaded")
        if len(self._adapters) == 1:
            self.model = self.model.unload()  # peft: the base model without LoRA layers
        else:
            self.model.delete_adapter(name)
            self.model.set_adapter(next(n for n in self._adapters if n != name))
        self.model.eval()
        del self._adapters[name]
        log.info("unloaded adapter %s", name)

    # -- prompts --------------------------------------------------------------------------------
    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """Prompt text for chat ``messages`` (the model's chat template, or the plain fallback)."""
        return render_prompt(self.tokenizer, messages)

    # -- generation -----------------------------------------------------------------------------
    def generate(
        self,
        prompts: list[str],
        adapter: str | None = None,
        json_schema: dict[str, Any] | None = None,
        max_new_tokens: int = 512,
    ) -> list[Generation]:
        """Greedy completions of ``prompts`` in one left-padded batch.

        ``adapter`` names a loaded adapter (``None``: the bare base model). With ``json_schema``
        every completion is constrained to compact JSON valid under it (see ``constrained.py``).
        """
        if not prompts:
            return []
        if adapter is not None and adapter not in self._adapters:
            known = ", ".join(self._adapters) or "none"
            raise KeyError(f"unknown adapter {adapter!r}; loaded adapters: {known}")
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        batch = self.tokenizer.pad({"input_ids": encoded}, padding=True, return_tensors="pt")
        input_ids = batch["input_ids"].to(self.device)
        attention_mask = batch["attention_mask"].to(self.device)
        prompt_length = input_ids.shape[1]
        processors = LogitsProcessorList()
        enforcer = None
        if json_schema is not None:
            enforcer = self._enforcer(json_schema)
            processors.append(
                constrained.JsonConstraintProcessor(enforcer, prompt_length, self.eos_token_ids)
            )
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_token_ids,
        )
        with torch.inference_mode(), self._adapter_context(adapter):
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=processors,
            )
        if enforcer is not None:
            constrained.trim_enforcer(enforcer)
        return [
            self._to_generation(row, len(ids))
            for row, ids in zip(output[:, prompt_length:].tolist(), encoded, strict=True)
        ]

    def _to_generation(self, row: list[int], prompt_tokens: int) -> Generation:
        eos = set(self.eos_token_ids)
        finish = "length"
        tokens = row
        for i, tok in enumerate(row):
            if tok in eos:
                tokens, finish = row[: i + 1], "stop"
                break
        else:
            pad = self.tokenizer.pad_token_id
            while tokens and tokens[-1] == pad and pad not in eos:
                tokens = tokens[:-1]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(tokens),
            finish_reason=finish,
        )

    def _adapter_context(self, adapter: str | None) -> Any:
        from contextlib import nullcontext

        if not self._adapters:
            return nullcontext()
        if adapter is None:
            return self.model.disable_adapter()
        self.model.set_adapter(adapter)
        return nullcontext()

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        configured = self.model.generation_config.eos_token_id
        for value in (self.tokenizer.eos_token_id, configured):
            if value is None:
                continue
            for v in value if isinstance(value, list) else [value]:
                if v not in ids:
                    ids.append(int(v))
        if not ids:
            raise ValueError(f"base model {self.base_model_path} defines no end-of-sequence token")
        return ids

    def _enforcer(self, json_schema: dict[str, Any]) -> Any:
        key = constrained.schema_key(json_schema)
        if key not in self._enforcers:
            if self._tokenizer_data is None:
                vocab = int(self.model.get_output_embeddings().weight.shape[0])
                self._tokenizer_data = constrained.build_tokenizer_data(
                    self.tokenizer, self.eos_token_ids, vocab
                )
            self._enforcers[key] = constrained.make_enforcer(self._tokenizer_data, json_schema)
        return self._enforcers[key]
