"""``rrief train``, ``rrief serve`` and ``rrief adapter check``: the LLM commands of the CLI.

``extractors/cli.py`` imports this module at start-up, so it imports only click here; torch,
transformers, peft and the server are imported inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--schema",
    "schema_ref",
    required=True,
    help="Schema id (cxr, mammo, ccta, cxr@1) or a schema file.",
)
@click.option(
    "--base-model",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Local directory of the base model (never downloaded).",
)
@click.option(
    "--train",
    "train_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Gold JSONL: report_id, text, labels.",
)
@click.option(
    "--eval",
    "eval_path",
    default=None,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Gold JSONL for eval loss, early stopping and exact match.",
)
@click.option(
    "--gold-format",
    default="jsonl",
    show_default=True,
    type=click.Choice(["jsonl", "openi-mesh", "cddcesm"]),
    help="jsonl: full labels (recommended). openi-mesh (Open-i reports.csv, cxr) and cddcesm "
    "(CDD-CESM breast_reports.csv, mammo) are partial golds: unstated labels train as defaults.",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="New adapter directory, e.g. adapters/cxr-v1.",
)
@click.option(
    "--r",
    "rank",
    default=16,
    show_default=True,
    type=click.IntRange(1, 512),
    help="LoRA rank (vLLM: <= --max-lora-rank, 64 in docs/vllm.md).",
)
@click.option(
    "--alpha", default=32.0, show_default=True, type=float, help="LoRA alpha (scale = alpha / r)."
)
@click.option(
    "--dropout", default=0.05, show_default=True, type=click.FloatRange(0, 1, max_open=True)
)
@click.option(
    "--lr", default=2e-4, show_default=True, type=float, help="Peak learning rate (AdamW)."
)
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(1))
@click.option(
    "--grad-accum",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Gradient accumulation steps.",
)
@click.option(
    "--scheduler",
    default="linear",
    show_default=True,
    type=click.Choice(["linear", "cosine", "constant", "constant_with_warmup"]),
)
@click.option(
    "--warmup-ratio", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True)
)
@click.option(
    "--early-stopping-patience",
    default=None,
    type=click.IntRange(1),
    help="Stop after this many epochs without eval-loss improvement (needs --eval).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--max-length",
    default=4096,
    show_default=True,
    type=click.IntRange(16),
    help="Longest prompt + answer in tokens; longer reports are an error.",
)
@click.option(
    "--with-evidence",
    is_flag=True,
    help="Answers with evidence quotes (not supported yet: a clear error).",
)
@click.option(
    "--qlora", is_flag=True, help="Load the base model in 4 bit (needs CUDA and bitsandbytes)."
)
@click.option(
    "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)."
)
@click.option(
    "--dtype", default=None, type=click.Choice(["auto", "float32", "bfloat16", "float16"])
)
@click.option(
    "--unsafe-train-lm-head-for-tests",
    "train_lm_head",
    is_flag=True,
    hidden=True,
    help="TESTS ONLY: also train the output head (modules_to_save); vLLM cannot load the result.",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def train(
    schema_ref: str,
    base_model: Path,
    train_path: Path,
    eval_path: Path | None,
    gold_format: str,
    output: Path,
    rank: int,
    alpha: float,
    dropout: float,
    lr: float,
    epochs: int,
    batch_size: int,
    grad_accum: int,
    scheduler: str,
    warmup_ratio: float,
    early_stopping_patience: int | None,
    seed: int,
    max_length: int,
    with_evidence: bool,
    qlora: bool,
    device: str | None,
    dtype: str | None,
    train_lm_head: bool,
    progress: bool,
) -> None:
    """Fine-tune a LoRA adapter for SCHEMA on gold reports and save it to OUTPUT.

    The loss covers the answer (the labels' canonical JSON) only. OUTPUT gets
    adapter_config.json, adapter_model.safetensors and rrief_adapter.json.
    """
    from pydantic import ValidationError

    from extractors.llm.adapters import AdapterError, check_adapter
    from extractors.llm.training import TrainConfig, TrainingError, train_adapter
    from extractors.schemas import SchemaError, get_schema
    from extractors.settings import get_settings

    if early_stopping_patience and eval_path is None:
        raise click.UsageError("--early-stopping-patience needs --eval")
    try:
        schema = get_schema(schema_ref, get_settings().schema_dirs())
        config = TrainConfig(
            r=rank,
            alpha=alpha,
            dropout=dropout,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            grad_accum=grad_accum,
            scheduler=scheduler,
            warmup_ratio=warmup_ratio,  # type: ignore[arg-type]
            early_stopping_patience=early_stopping_patience,
            seed=seed,
            max_length=max_length,
            with_evidence=with_evidence,
            qlora=qlora,
            device=device,
            dtype=dtype,
            train_lm_head_for_tests=train_lm_head,
        )
        result = train_adapter(
            schema, base_model, train_path, output, eval_path, config, progress, gold_format
        )
    except (SchemaError, TrainingError, AdapterError, ValidationError) as exc:
        raise click.ClickException(str(exc)) from None
    metrics = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in result.metadata.metrics.items()
    )
    click.echo(f"adapter saved to {result.output} ({metrics})", err=True)
    for problem in check_adapter(result.output):
        click.echo(f"warning: {problem}", err=True)


@click.group()
def adapter() -> None:
    """Inspect LoRA adapters made by `rrief train`."""


@adapter.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--max-rank",
    default=None,
    type=click.IntRange(1, 512),
    help="The vLLM server's --max-lora-rank (default 64).",
)
def adapter_check(path: Path, max_rank: int | None) -> None:
    """Refuse adapters vLLM would reject (modules_to_save, bias, rank, DoRA, missing files).

    Exit status 0 and "ok" when the adapter is fine, 1 with one line per problem otherwise.
    """
    from extractors.llm.adapters import DEFAULT_MAX_LORA_RANK, check_adapter

    problems = check_adapter(path, max_rank or DEFAULT_MAX_LORA_RANK)
    if problems:
        for problem in problems:
            click.echo(f"{path}: {problem}", err=True)
        raise SystemExit(1)
    click.echo(f"{path}: ok (vLLM-compatible LoRA adapter)")


def register(cli: click.Group) -> None:
    """Attach ``train``, ``adapter``, ``models`` and ``serve`` (light modules: click only)."""
    cli.add_command(train)
    cli.add_command(adapter)
    from extractors.llm.models_command import models
    from extractors.llm.serve_command import serve

    cli.add_command(models)
    cli.add_command(serve)
