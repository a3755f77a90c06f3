"""LoRA fine-tuning (peft) of a local base model on gold-labelled reports: ``rrief train``.

Supervised fine-tuning on (prompt, answer) pairs with ``transformers.Trainer``: the prompt is
:func:`extractors.llm.prompts.build_messages` (template 2: the compact instruction) rendered with
the base model's chat template, the answer the labels' sparse JSON (only non-default fields)
plus end-of-sequence. The loss covers the answer tokens only (prompt tokens are labelled -100).
No special tokens are added to the tokenizer. The Trainer brings what a hand-written loop had to
re-implement: a checkpoint per epoch (``--resume`` continues an interrupted run from the last
one, kept in ``OUTPUT.checkpoints/`` until the adapter is saved), best-model restore by eval
loss with early stopping, gradient checkpointing and bf16 on CUDA (never on CPU: slower there).

:class:`TrainConfig` is the one declaration of the hyperparameters: ``rrief train`` derives its
options from it (:func:`extractors.llm.commands.config_options`) and the adapter records it.

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
import shutil
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
    PromptFormat,
    adapter_format,
    build_messages,
    render_prompt,
    target_text,
)
from extractors.schemas import SchemaSpec

log = logging.getLogger("rrief.train")


class TrainingError(ValueError):
    """Training cannot start or continue: bad gold data, bad options, missing hardware."""


def _cli(help: str, name: str | None = None, hidden: bool = False) -> dict[str, Any]:
    """Field metadata ``rrief train`` turns into an option (name defaults to ``--field-name``)."""
    return {"description": help, "json_schema_extra": {"cli": name, "hidden": hidden}}


class TrainConfig(BaseModel):
    """Hyperparameters of one training run (recorded in ``rrief_adapter.json``; the CLI options)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(
        default=16,
        ge=1,
        le=VLLM_MAX_SUPPORTED_RANK,
        **_cli("LoRA rank (vLLM: <= --max-lora-rank, 64 in docs/vllm.md)."),
    )
    alpha: float = Field(default=32.0, gt=0, **_cli("LoRA alpha (scale = alpha / r)."))
    dropout: float = Field(default=0.05, ge=0, lt=1, **_cli("LoRA dropout."))
    target_modules: str | list[str] = "all-linear"
    lr: float = Field(default=5e-4, gt=0, **_cli("Peak learning rate (AdamW)."))
    weight_decay: float = Field(default=0.0, ge=0, **_cli("AdamW weight decay."))
    epochs: int = Field(default=3, ge=1, **_cli("Passes over the training reports."))
    batch_size: int = Field(default=4, ge=1, **_cli("Reports per step (per device)."))
    grad_accum: int = Field(default=1, ge=1, **_cli("Gradient accumulation steps."))
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        default="linear", **_cli("Learning-rate schedule.")
    )
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1, **_cli("Share of steps to warm up."))
    early_stopping_patience: int | None = Field(
        default=None,
        ge=1,
        **_cli("Stop after this many epochs without eval-loss improvement (needs --eval)."),
    )
    seed: int = Field(default=0, **_cli("Random seed (data order, LoRA init)."))
    max_length: int = Field(
        default=4096,
        ge=16,
        **_cli("Longest prompt + answer in tokens; longer reports are an error."),
    )
    prompt_template: Literal["1", "2"] = Field(
        default=PROMPT_TEMPLATE_VERSION,
        **_cli("Prompt template: 2 = compact instruction + sparse answers; 1 = the old full one."),
    )
    with_evidence: bool = Field(
        default=False, **_cli("Answers with evidence quotes (not supported yet: a clear error).")
    )
    qlora: bool = Field(
        default=False, **_cli("Load the base model in 4 bit (needs CUDA and bitsandbytes).")
    )
    gradient_checkpointing: bool | None = Field(
        default=None, **_cli("Recompute activations to save memory (default: on CUDA only).")
    )
    train_lm_head_for_tests: bool = Field(
        default=False,
        **_cli(
            "TESTS ONLY: also train the output head (modules_to_save); vLLM cannot load it.",
            name="--unsafe-train-lm-head-for-tests",
            hidden=True,
        ),
    )
    device: str | None = Field(
        default=None, **_cli("cpu, cuda, cuda:1 ... (default: cuda when available).")
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = Field(
        default=None, **_cli("Weights dtype (default: bfloat16 on CUDA, float32 on CPU).")
    )
    eval_exact_match: bool = Field(
        default=True, **_cli("After training, the share of --eval reports predicted exactly.")
    )


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


def prompt_text(
    tokenizer: Any, schema: SchemaSpec, report_text: str, fmt: PromptFormat | None = None
) -> str:
    return render_prompt(tokenizer, build_messages(schema, report_text, fmt or adapter_format("2")))


def encode_example(
    tokenizer: Any,
    schema: SchemaSpec,
    example: GoldExample,
    max_length: int,
    fmt: PromptFormat | None = None,
) -> dict[str, list[int]]:
    """``input_ids`` = prompt + answer + EOS; ``labels`` = -100 over the prompt, ids over the answer.

    Prompt and answer are tokenized separately, exactly as at inference (the model continues
    after the prompt's last token). ``fmt`` defaults to the current adapter format (compact
    instruction, sparse answer).
    """
    from extractors.llm.engine import encode_prompt

    fmt = fmt or adapter_format(PROMPT_TEMPLATE_VERSION)
    prompt_ids = encode_prompt(tokenizer, prompt_text(tokenizer, schema, example.text, fmt))
    answer_ids = list(
        tokenizer(target_text(schema, example.labels, fmt), add_special_tokens=False)["input_ids"]
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


def _log_steps_callback(total_steps: int) -> Any:
    """A Trainer callback: one log line per optimizer step and per evaluation (no report text)."""
    from transformers import TrainerCallback

    class LogSteps(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            logs = logs or {}
            epoch = math.ceil(state.epoch or 1)
            if "loss" in logs:
                log.info(
                    "epoch %d step %d/%d loss %.4f lr %.2e",
                    epoch,
                    state.global_step,
                    total_steps,
                    logs["loss"],
                    logs.get("learning_rate", 0.0),
                )
            if "eval_loss" in logs:
                log.info("epoch %d eval loss %.4f", epoch, logs["eval_loss"])

    return LogSteps()


def checkpoint_dir(output: Path) -> Path:
    """Where a run keeps its per-epoch checkpoints until the adapter is saved: ``OUTPUT.checkpoints``."""
    return output.with_name(output.name + ".checkpoints")


def _training_arguments(
    config: TrainConfig, checkpoints: Path, device: str, has_eval: bool, progress: bool
) -> Any:
    from transformers import TrainingArguments

    cuda = device.startswith("cuda")
    with_eval = has_eval  # per-epoch eval, best-model restore
    return TrainingArguments(
        output_dir=str(checkpoints),
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_ratio,  # < 1: a share of the steps
        max_grad_norm=1.0,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        logging_strategy="steps",
        save_strategy="epoch",
        save_only_model=False,  # optimizer and scheduler state too, so --resume continues exactly
        eval_strategy="epoch" if with_eval else "no",
        load_best_model_at_end=with_eval,
        metric_for_best_model="eval_loss" if with_eval else None,
        greater_is_better=False if with_eval else None,
        save_total_limit=2 if with_eval else 1,  # the best and the last
        label_names=["labels"],  # a peft model hides the signature Trainer would infer it from
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=not progress,
        use_cpu=not cuda,
        bf16=cuda and config.dtype in (None, "auto", "bfloat16") and not config.qlora,
        activation_checkpointing=(  # transformers 5 name of gradient checkpointing
            cuda if config.gradient_checkpointing is None else config.gradient_checkpointing
        ),
        activation_checkpointing_kwargs={"use_reentrant": False},
        dataloader_num_workers=0,
    )


def last_checkpoint(checkpoints: Path) -> str | None:
    """The newest per-epoch checkpoint in ``checkpoints`` (None: nothing to resume from)."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None


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
    resume: bool = False,
) -> TrainResult:
    """Fine-tune a LoRA adapter for ``schema`` and save it (with ``rrief_adapter.json``) to ``output``.

    ``resume`` continues from the last checkpoint in ``OUTPUT.checkpoints`` (same data and
    config).
    """
    import torch
    from transformers import AutoTokenizer, EarlyStoppingCallback, Trainer
    from transformers.trainer_callback import PrinterCallback

    from extractors.llm.engine import resolve_device

    config = config or TrainConfig()
    if config.with_evidence:
        raise TrainingError(
            "--with-evidence is not supported yet: answers are labels only (evidence comes from "
            "the rules backend); train without it"
        )
    if config.early_stopping_patience and eval_path is None:
        raise TrainingError("--early-stopping-patience needs --eval")
    base_model = Path(base_model).expanduser().resolve()
    output = Path(output)
    checkpoints = checkpoint_dir(output)
    if not (base_model / "config.json").is_file():
        raise TrainingError(f"base model directory {base_model} has no config.json")
    if output.exists() and any(output.iterdir()):
        raise TrainingError(f"output directory {output} exists and is not empty; choose a new one")
    resume_from = last_checkpoint(checkpoints) if resume else None
    if resume and resume_from is None:
        raise TrainingError(f"--resume: no checkpoint in {checkpoints} to continue from")
    if not resume and checkpoints.exists() and any(checkpoints.iterdir()):
        raise TrainingError(
            f"{checkpoints} holds checkpoints of an interrupted run: continue it with --resume "
            "or delete that directory"
        )
    train_path = Path(train_path)
    train_examples, warning = load_training_examples(train_path, schema, gold_format)
    if warning:
        log.warning(warning)
    eval_examples = load_training_examples(eval_path, schema, gold_format)[0] if eval_path else []
    device = resolve_device(config.device)
    fmt = adapter_format(config.prompt_template)

    _seed_everything(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    if tokenizer.eos_token_id is None:
        raise TrainingError(f"the tokenizer of {base_model} has no end-of-sequence token")
    train_items = [
        encode_example(tokenizer, schema, ex, config.max_length, fmt) for ex in train_examples
    ]
    eval_items = [
        encode_example(tokenizer, schema, ex, config.max_length, fmt) for ex in eval_examples
    ]
    model = _load_model(base_model, config, device)
    if config.gradient_checkpointing or (
        config.gradient_checkpointing is None and device.startswith("cuda")
    ):
        model.enable_input_require_grads()  # LoRA: the frozen embeddings need grads for recompute
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    steps_per_epoch = math.ceil(math.ceil(len(train_items) / config.batch_size) / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    log.info(
        "training %s adapter on %d reports (%d eval), %d trainable parameters, device %s, "
        "prompt template %s",
        schema.id,
        len(train_items),
        len(eval_items),
        n_trainable,
        device,
        fmt.version,
    )
    callbacks: list[Any] = [_log_steps_callback(total_steps)]
    if config.early_stopping_patience and eval_items:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=_training_arguments(config, checkpoints, device, bool(eval_items), progress),
        train_dataset=train_items,  # type: ignore[arg-type]
        eval_dataset=eval_items or None,  # type: ignore[arg-type]
        data_collator=lambda items: _collate(items, pad_id),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts; _log_steps_callback logs
    trainer.train(resume_from_checkpoint=resume_from)
    history = trainer.state.log_history
    step_losses = [float(h["loss"]) for h in history if "loss" in h]
    eval_losses = [float(h["eval_loss"]) for h in history if "eval_loss" in h]
    model = trainer.model
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    metrics: dict[str, float | int | None] = {
        "train_loss_first": step_losses[0] if step_losses else None,
        "train_loss_last": step_losses[-1] if step_losses else None,
        "epochs_run": math.ceil(trainer.state.epoch or 0),
        "optimizer_steps": trainer.state.global_step,
        "eval_loss": min(eval_losses) if eval_losses else None,
        "train_runtime_s": next(
            (float(h["train_runtime"]) for h in history if "train_runtime" in h), None
        ),
    }
    del model, trainer
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the exact-match pass below loads the model again
    shutil.rmtree(checkpoints, ignore_errors=True)  # the adapter is saved: nothing to resume
    fingerprint = base_model_fingerprint(base_model)
    metadata = AdapterMetadata(
        rrief_version=__version__,
        created_at=now_iso(),
        schema_name=schema.name,
        schema_version=schema.version,
        prompt_template_version=fmt.version,
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
