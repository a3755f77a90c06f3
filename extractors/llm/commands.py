"""``rrief train``, ``rrief serve`` and ``rrief adapter check``: the LLM commands of the CLI.

``extractors/cli.py`` imports this module at start-up, so it imports only click here; torch,
transformers, peft and the server are imported inside the command bodies.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from extractors.llm.training import TrainConfig


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, is a flag) for a pydantic field annotation (``X | None`` is optional X)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0] if len(args) == 1 else annotation
    if typing.get_origin(annotation) is typing.Literal:
        return click.Choice([str(v) for v in typing.get_args(annotation)]), False
    if annotation is bool:
        return None, True
    return {int: int, float: float, str: str}.get(annotation, str), False


def config_options(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Click options for every field of ``model`` that carries a description (its help text).

    The hyperparameters are declared once, in the model: name (``--field-name`` unless the
    field names another), type, default, choices and help all come from it; pydantic then
    validates the values (ranges included) when the command builds the model.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for name, field in reversed(list(model.model_fields.items())):
            if not field.description:
                continue
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            flag = str(extra.get("cli") or "--" + name.replace("_", "-"))
            kind, is_flag = _click_type(field.annotation)
            if is_flag and not extra.get("hidden") and field.default is not None:
                decl = f"{flag}/--no-{flag[2:]}"
            else:
                decl = flag
            if is_flag and field.default is None:  # tri-state: unset means "automatic"
                option = click.option(
                    f"{flag}/--no-{flag[2:]}", name, default=None, help=field.description
                )
            elif is_flag:
                option = click.option(
                    decl,
                    name,
                    default=field.default,
                    show_default=True,
                    hidden=bool(extra.get("hidden")),
                    help=field.description,
                )
            else:
                option = click.option(
                    decl,
                    name,
                    type=kind,
                    default=field.default,
                    show_default=field.default is not None,
                    help=field.description,
                )
            command = option(command)
        return command

    return decorate


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
@config_options(TrainConfig)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run from its last epoch checkpoint (OUTPUT.checkpoints/).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def train(
    schema_ref: str,
    base_model: Path,
    train_path: Path,
    eval_path: Path | None,
    gold_format: str,
    output: Path,
    resume: bool,
    progress: bool,
    **hyperparameters: Any,
) -> None:
    """Fine-tune a LoRA adapter for SCHEMA on gold reports and save it to OUTPUT.

    The loss covers the answer (the labels' canonical JSON) only. OUTPUT gets
    adapter_config.json, adapter_model.safetensors and rrief_adapter.json.
    """
    from pydantic import ValidationError

    from extractors.llm.adapters import AdapterError, check_adapter
    from extractors.llm.training import TrainingError, train_adapter
    from extractors.schemas import SchemaError, get_schema
    from extractors.settings import get_settings

    if hyperparameters.get("early_stopping_patience") and eval_path is None:
        raise click.UsageError("--early-stopping-patience needs --eval")
    try:
        schema = get_schema(schema_ref, get_settings().schema_dirs())
        config = TrainConfig(**hyperparameters)
        result = train_adapter(
            schema, base_model, train_path, output, eval_path, config, progress, gold_format, resume
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
