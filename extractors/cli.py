"""The ``rrief`` command line: extract, evaluate, schemas (and train/serve/adapter with LLM extras)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from extractors import __version__
from extractors.extract import BACKENDS, BackendError
from extractors.extract.configured import configured_extractor
from extractors.extract.runner import extract_file
from extractors.io import InputError, iter_reports
from extractors.logs import configure_logging
from extractors.schemas import SchemaError, available_schemas, get_schema
from extractors.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rrief")
@click.option(
    "--log-level", default=None, help="DEBUG, INFO, WARNING... (default: RRIEF_LOG_LEVEL or INFO)"
)
def cli(log_level: str | None) -> None:
    """RRIEF: turn free-text radiology reports into structured, validated labels.

    Everything runs locally; report text never leaves the machine.
    """
    configure_logging(log_level or get_settings().log_level)


def _parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        options[key.strip().replace("-", "_")] = value
    return options


@cli.command()
@click.option(
    "--schema",
    "schema_ref",
    required=True,
    help="Schema id (cxr, cxr@1, mammo, ccta) or a schema file.",
)
@click.option(
    "--backend", default="rules", show_default=True, help=f"One of: {', '.join(sorted(BACKENDS))}."
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL (report_id, text) or CSV.",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Result JSONL, one line per input report.",
)
@click.option(
    "--input-format", type=click.Choice(["auto", "jsonl", "csv"]), default="auto", show_default=True
)
@click.option(
    "--id-col", default="report_id", show_default=True, help="Column/key holding the report id."
)
@click.option(
    "--text-col",
    "text_cols",
    multiple=True,
    help="Text column(s); several are joined as 'NAME: text' sections. Default: text.",
)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 4096))
@click.option(
    "--adapter",
    default=None,
    help="LLM backends: adapter directory (hf) or served name (openai). Default: RRIEF_ADAPTER.",
)
@click.option(
    "--base-model", default=None, help="hf: local base model directory. Default: RRIEF_BASE_MODEL."
)
@click.option(
    "--endpoint", default=None, help="openai: server base URL. Default: RRIEF_LLM_ENDPOINT."
)
@click.option(
    "--few-shot",
    "few_shot",
    default=None,
    type=click.Path(path_type=Path, dir_okay=False),
    help="hf without --adapter: gold JSONL to take solved example reports from (few-shot).",
)
@click.option(
    "--shots",
    default=None,
    type=click.IntRange(1, 64),
    help="With --few-shot: how many examples (chosen deterministically; default 5).",
)
@click.option("--option", "extra", multiple=True, help="Backend-specific KEY=VALUE (repeatable).")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr."
)
def extract(
    schema_ref: str,
    backend: str,
    input_path: Path,
    output_path: Path,
    input_format: str,
    id_col: str,
    text_cols: tuple[str, ...],
    batch_size: int,
    adapter: str | None,
    base_model: str | None,
    endpoint: str | None,
    few_shot: Path | None,
    shots: int | None,
    extra: tuple[str, ...],
    progress: bool,
) -> None:
    """Extract labels from every report in INPUT into OUTPUT (one JSON line each, input order).

    Bad records become lines with "status": "error" and a message; nothing is dropped.
    """
    options = _parse_options(extra)
    if shots is not None and few_shot is None:
        raise click.UsageError("--shots needs --few-shot GOLD.jsonl")
    options.update({"few_shot": few_shot, "shots": shots} if few_shot else {})
    settings = get_settings()
    try:
        schema = get_schema(schema_ref, settings.schema_dirs())
        # LLM backends fall back to RRIEF_ADAPTER / _BASE_MODEL / _LLM_ENDPOINT / _LLM_API_KEY
        flags = {"adapter": adapter, "base_model": base_model, "endpoint": endpoint}
        given = {**options, **{k: v for k, v in flags.items() if v is not None}}
        extractor = configured_extractor(settings, backend, schema, **given)
        records = iter_reports(input_path, input_format, id_col, text_cols or ("text",))  # type: ignore[arg-type]
        summary = extract_file(extractor, records, output_path, batch_size, progress)
    except (SchemaError, BackendError, InputError) as exc:
        raise click.ClickException(str(exc)) from None
    duplicates = (
        f"; {summary.duplicates} repeat an earlier report id (flagged duplicate_report_id)"
        if summary.duplicates
        else ""
    )
    click.echo(
        f"{summary.total} reports -> {output_path}: {summary.ok} ok, {summary.errors} errors "
        f"({summary.per_second:.0f} reports/s){duplicates}",
        err=True,
    )


@cli.group()
def schemas() -> None:
    """List and inspect report schemas (built-in and from RRIEF_SCHEMA_PATH)."""


@schemas.command("list")
def schemas_list() -> None:
    """One line per known schema: id and title."""
    try:
        found = available_schemas(get_settings().schema_dirs())
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    for schema_id, spec in sorted(found.items()):
        click.echo(f"{schema_id}\t{spec.title}")


@schemas.command("show")
@click.argument("schema_ref")
def schemas_show(schema_ref: str) -> None:
    """Fields, allowed values and label semantics of SCHEMA_REF."""
    try:
        spec = get_schema(schema_ref, get_settings().schema_dirs())
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(spec.describe())
    if spec.semantics:
        click.echo(f"\nSemantics: {spec.semantics}")


@schemas.command("json-schema")
@click.argument("schema_ref")
def schemas_json_schema(schema_ref: str) -> None:
    """The JSON Schema of SCHEMA_REF's labels (used for constrained decoding)."""
    try:
        spec = get_schema(schema_ref, get_settings().schema_dirs())
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    json.dump(spec.json_schema(), sys.stdout, indent=2)
    click.echo()


@cli.group()
def datasets() -> None:
    """Prepare the public development sets (Open-i, CDD-CESM) as extract input."""


@datasets.command("export")
@click.argument("dataset", type=click.Choice(["openi", "cddcesm"]))
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", required=True, type=click.Path(path_type=Path), help="JSONL to write.")
def datasets_export(dataset: str, source: Path, output: Path) -> None:
    """Write SOURCE (Open-i reports.csv or CDD-CESM breast_reports.csv) as report_id/text JSONL."""
    from extractors.gold.exports import export

    try:
        n = export(dataset, source, output)
    except (ValueError, KeyError) as exc:
        raise click.ClickException(f"cannot read {source} as {dataset}: {exc}") from None
    click.echo(f"{n} reports -> {output}", err=True)


def _attach_commands() -> None:
    """Attach the commands that live beside their modules (they import heavy deps lazily)."""
    from extractors.annotate.command import annotate
    from extractors.demo.command import demo
    from extractors.evaluate.command import evaluate
    from extractors.lifecycle.command import adapters
    from extractors.llm.commands import register as register_llm_commands
    from extractors.ris.command import ris
    from extractors.warehouse.command import warehouse

    cli.add_command(evaluate)
    cli.add_command(annotate)
    cli.add_command(demo)
    cli.add_command(warehouse)
    cli.add_command(ris)
    cli.add_command(adapters)
    register_llm_commands(cli)


_attach_commands()


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
