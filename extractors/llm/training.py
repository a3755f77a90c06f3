"""LoRA fine-tuning (peft) of a local base model on gold-labelled reports: ``rrief train``.

Supervised fine-tuning on (prompt, answer) pairs, where the prompt is
:func:`extractors.llm.prompts.build_messages` rendered with the base model's chat template and
the answer is the labels' canonical compact JSON plus end-of-sequence. The loss covers the
answer tokens only (prompt tokens are labelled -100). No special tokens are added to the
tokenizer. A plain torch loop (AdamW, a transformers LR schedule, gradient accumulation, early
stopping on eval loss) keeps the moving parts few and visible.

The saved adapter is vLLM-loadable by default: LoRA on every linear layer except the output
head (``target_modules="all-linear"``), ``bias="none"``, no ``modules_to_save``. The single
exception is ``train_lm_head_for_tests``: a random-weight test model learns nothing unless its
output head is trained too, so tests may opt in, and ``rrief adapter check`` then flags the
adapter as not vLLM-compatible.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from extractors import __version__
from extractors.gold import GoldError, GoldExample, load_examples
from extractors.llm.adapters import (
    ADAPTER_WEIGHTS_FILE,
    VLLM_MAX_SUPPORTED_RANK,
    AdapterMetadata,
    TrainingDataInfo,
    base_model_fingerprint,
    now_iso,
    sha256_file,
    write_adapter_metadata,
)
from extractors.llm.prompts import (
    PROMPT_TEMPLATE_VERSION,
    build_messages,
    render_prompt,
    target_text,
)
from extractors.schemas import SchemaSpec

log = logging.getLogger("rrief.train")


class TrainingError(ValueError):
    """Training cannot start or continue: bad gold data, bad options, missing hardware."""


class TrainConfig(BaseModel):
    """Hyperparameters of one training run (recorded in ``rrief_adapter.json``)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1, le=VLLM_MAX_SUPPORTED_RANK)
    alpha: float = Field(default=32.0, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    lr: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    early_stopping_patience: int | None = Field(default=None, ge=1)
    seed: int = 0
    max_length: int = Field(default=4096, ge=16)
    with_evidence: bool = False
    qlora: bool = False
    train_lm_head_for_tests: bool = False
    device: str | None = None
    dtype: str | None = None
    eval_exact_match: bool = True


@dataclass
class TrainResult:
    output: Path
    metadata: AdapterMetadata
    step_losses: list[float] = field(default_factory=list)
    epoch_eval_losses: list[float] = field(default_factory=list)


# -- gold data ---------------------------------------------------------------------------------
def load_training_examples(
    path: str | Path, schema: SchemaSpec, fmt: str = "jsonl"
) -> tuple[list[GoldExample], str | None]:
    """:func:`extractors.gold.load_examples`, its :class:`GoldError` as a :class:`TrainingError`."""
    try:
        return load_examples(path, schema, fmt)
    except GoldError as exc:
        raise TrainingError(str(exc)) from None


def prompt_text(tokenizer: Any, schema: SchemaSpec, report_text: str) -> str:
    return render_prompt(tokenizer, build_messages(schema, report_text))


def encode_example(
    tokenizer: Any, schema: SchemaSpec, example: GoldExample, max_length: int
) -> dict[str, list[int]]:
    """``input_ids`` = prompt + answer + EOS; ``labels`` = -100 over the prompt, ids over the answer.

    Prompt and answer are tokenized separately, exactly as at inference (the model continues
    after the prompt's last token).
    """
    from extractors.llm.engine import encode_prompt

    prompt_ids = encode_prompt(tokenizer, prompt_text(tokenizer, schema, example.text))
    answer_ids = list(
        tokenizer(target_text(schema, example.labels), add_special_tokens=False)["input_ids"]
    )
    answer_ids.append(tokenizer.eos_token_id)
    total = len(prompt_ids) + len(answer_ids)
    if total > max_length:
        raise TrainingError(
            f"report {example.report_id!r} needs {total} tokens (prompt + answer), over "
            f"--max-length {max_length}; raise --max-length or shorten the report"
        )
    return {"input_ids": prompt_ids + answer_ids, "labels": [-100] * len(prompt_ids) + answer_ids}


def _collate(items: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(it["input_ids"]) for it in items)
    ids, labels, mask = [], [], []
    for it in items:
        pad = width - len(it["input_ids"])
        ids.append(it["input_ids"] + [pad_id] * pad)
        labels.append(it["labels"] + [-100] * pad)
        mask.append([1] * len(it["input_ids"]) + [0] * pad)
    return {
        "input_ids": torch.tensor(ids),
        "labels": torch.tensor(labels),
        "attention_mask": torch.tensor(mask),
    }


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- model -------------------------------------------------------------------------------------
def _load_model(base_model: Path, config: TrainConfig, device: str) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from extractors.llm.engine import resolve_dtype

    kwargs: dict[str, Any] = {"local_files_only": True}
    if config.qlora:
        if not torch.cuda.is_available() or not device.startswith("cuda"):
            raise TrainingError(
                "--qlora needs a CUDA GPU; none is available here (train without --qlora)"
            )
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError:
            raise TrainingError(
                "--qlora needs the bitsandbytes package: pip install bitsandbytes"
            ) from None
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": device}
    else:
        kwargs["dtype"] = resolve_dtype(config.dtype, device)
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    if config.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    else:
        model = model.to(device)
    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
        modules_to_save=["lm_head"] if config.train_lm_head_for_tests else None,
    )
    return get_peft_model(model, lora)


def _mean_loss(model: Any, batches: list[dict[str, Any]], device: str) -> float:
    """Token-weighted mean loss over ``batches`` (eval mode, no gradients)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def _trainable_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


# -- the run -----------------------------------------------------------------------------------
def train_adapter(
    schema: SchemaSpec,
    base_model: str | Path,
    train_path: str | Path,
    output: str | Path,
    eval_path: str | Path | None = None,
    config: TrainConfig | None = None,
    progress: bool = True,
    gold_format: str = "jsonl",
) -> TrainResult:
    """Fine-tune a LoRA adapter for ``schema`` and save it (with ``rrief_adapter.json``) to ``output``."""
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer, get_scheduler

    from extractors.llm.engine import resolve_device

    config = config or TrainConfig()
    if config.with_evidence:
        raise TrainingError(
            "--with-evidence is not supported yet: answers are labels only (evidence comes from "
            "the rules backend); train without it"
        )
    base_model = Path(base_model).expanduser().resolve()
    output = Path(output)
    if not (base_model / "config.json").is_file():
        raise TrainingError(f"base model directory {base_model} has no config.json")
    if output.exists() and any(output.iterdir()):
        raise TrainingError(f"output directory {output} exists and is not empty; choose a new one")
    train_path = Path(train_path)
    train_examples, warning = load_training_examples(train_path, schema, gold_format)
    if warning:
        log.warning(warning)
    eval_examples = load_training_examples(eval_path, schema, gold_format)[0] if eval_path else []
    device = resolve_device(config.device)

    _seed_everything(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    if tokenizer.eos_token_id is None:
        raise TrainingError(f"the tokenizer of {base_model} has no end-of-sequence token")
    train_items = [
        encode_example(tokenizer, schema, ex, config.max_length) for ex in train_examples
    ]
    eval_batches = [
        _collate(
            [
                encode_example(tokenizer, schema, ex, config.max_length)
                for ex in eval_examples[i : i + config.batch_size]
            ],
            pad_id,
        )
        for i in range(0, len(eval_examples), config.batch_size)
    ]
    model = _load_model(base_model, config, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    log.info(
        "training %s adapter on %d reports (%d eval), %d trainable parameters, device %s",
        schema.id,
        len(train_items),
        len(eval_examples),
        sum(p.numel() for p in trainable),
        device,
    )
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    batches_per_epoch = math.ceil(len(train_items) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_scheduler(
        config.scheduler,
        optimizer=optimizer,
        num_warmup_steps=int(config.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    generator = torch.Generator().manual_seed(config.seed)
    step_losses: list[float] = []
    eval_losses: list[float] = []
    best_eval, best_state, stale, step = math.inf, None, 0, 0
    model.train()
    bar = tqdm(total=total_steps, desc="train", unit="step", disable=not progress)
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(train_items), generator=generator).tolist()
        batches = [
            order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)
        ]
        running, micro = 0.0, 0
        for b, idx in enumerate(batches, start=1):
            batch = {
                k: v.to(device) for k, v in _collate([train_items[i] for i in idx], pad_id).items()
            }
            loss = model(**batch).loss
            (loss / config.grad_accum).backward()
            running += loss.item()
            micro += 1
            if micro == config.grad_accum or b == len(batches):
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                step_loss = running / micro
                step_losses.append(step_loss)
                log.info(
                    "epoch %d step %d/%d loss %.4f lr %.2e",
                    epoch,
                    step,
                    total_steps,
                    step_loss,
                    scheduler.get_last_lr()[0],
                )
                bar.update(1)
                bar.set_postfix(loss=f"{step_loss:.4f}")
                running, micro = 0.0, 0
        if eval_batches:
            eval_loss = _mean_loss(model, eval_batches, device)
            eval_losses.append(eval_loss)
            log.info("epoch %d eval loss %.4f", epoch, eval_loss)
            if eval_loss < best_eval:
                best_eval, stale = eval_loss, 0
                if config.early_stopping_patience:
                    best_state = _trainable_state(model)
            else:
                stale += 1
                if config.early_stopping_patience and stale >= config.early_stopping_patience:
                    log.info(
                        "early stopping after epoch %d (no eval improvement for %d epochs)",
                        epoch,
                        stale,
                    )
                    break
    bar.close()
    if best_state is not None:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in best_state:
                    param.copy_(best_state[name])
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    metrics: dict[str, float | int | None] = {
        "train_loss_first": step_losses[0] if step_losses else None,
        "train_loss_last": step_losses[-1] if step_losses else None,
        "epochs_run": epoch,
        "optimizer_steps": step,
        "eval_loss": best_eval if eval_losses else None,
    }
    del model, optimizer, trainable, best_state
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the exact-match pass below loads the model again
    fingerprint = base_model_fingerprint(base_model)
    metadata = AdapterMetadata(
        rrief_version=__version__,
        created_at=now_iso(),
        schema_name=schema.name,
        schema_version=schema.version,
        prompt_template_version=PROMPT_TEMPLATE_VERSION,
        with_evidence=config.with_evidence,
        base_model=fingerprint,
        training_data=TrainingDataInfo(
            sha256=_sha256_of(train_path),
            size=len(train_examples),
            eval_sha256=_sha256_of(Path(eval_path)) if eval_path else None,
            eval_size=len(eval_examples) if eval_path else None,
        ),
        hyperparameters=config.model_dump(),
        metrics=metrics,
        adapter_sha256=sha256_file(output / ADAPTER_WEIGHTS_FILE),
        train_lm_head_for_tests=config.train_lm_head_for_tests,
    )
    write_adapter_metadata(output, metadata)
    if eval_examples and config.eval_exact_match:
        metadata.metrics["eval_exact_match"] = exact_match(
            schema, base_model, output, eval_examples, config.batch_size, device, config.dtype
        )
        write_adapter_metadata(output, metadata)
    log.info("saved adapter to %s", output)
    return TrainResult(
        output=output, metadata=metadata, step_losses=step_losses, epoch_eval_losses=eval_losses
    )


def exact_match(
    schema: SchemaSpec,
    base_model: Path,
    adapter_dir: Path,
    examples: list[GoldExample],
    batch_size: int,
    device: str | None = None,
    dtype: str | None = None,
) -> float:
    """Share of ``examples`` whose constrained prediction equals the gold labels exactly."""
    from extractors.llm.hf_backend import HFExtractor
    from extractors.results import ReportInput

    extractor = HFExtractor(
        schema,
        adapter=adapter_dir,
        base_model=base_model,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
    )
    results = extractor.extract_batch(
        [ReportInput(report_id=e.report_id, text=e.text) for e in examples]
    )
    hits = sum(
        1
        for r, e in zip(results, examples, strict=True)
        if r.status == "ok" and r.labels == e.labels
    )
    return hits / len(examples)
