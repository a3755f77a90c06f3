"""``rrief models import-gguf``: turn a local GGUF file into a base model directory RRIEF can use."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def models() -> None:
    """Base models: import a local GGUF file (Ollama, llama.cpp, LM Studio) as a transformers model."""


@models.command("import-gguf")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="New directory for the model (safetensors, tokenizer, chat template, rrief_import.json).",
)
@click.option(
    "--dtype",
    default="float32",
    show_default=True,
    type=click.Choice(["float32", "bfloat16"]),
    help="Precision of the saved weights (the GGUF is dequantized).",
)
def import_gguf_command(source: Path, output: Path, dtype: str) -> None:
    """Dequantize the GGUF file SOURCE into a transformers directory usable as --base-model.

    Nothing is downloaded. The directory records the source file name, its sha256 and the
    quantization type in rrief_import.json.
    """
    from extractors.llm.gguf_import import GGUFImportError, import_gguf

    try:
        provenance = import_gguf(source, output, dtype)
    except GGUFImportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"imported {provenance.source_file} ({provenance.architecture}, "
        f"{provenance.quantization}, sha256 {provenance.source_sha256[:12]}) to {output}",
        err=True,
    )
