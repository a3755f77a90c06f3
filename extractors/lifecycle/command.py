"""``rrief adapters``: the adapter registry from the command line (list, show, register, promote,
retire). Settings are read here (the edge) and passed down as values."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

URL_OPTION = click.option(
    "--url", default=None, help="Warehouse SQLAlchemy URL (default: RRIEF_WAREHOUSE_URL)."
)
BY_OPTION = click.option(
    "--by", default=None, help="Who does it (recorded; default: the login name)."
)


def _engine(url: str | None) -> Any:
    from extractors.settings import get_settings
    from extractors.warehouse.db import make_engine

    return make_engine(url or get_settings().warehouse_url)


def _run(url: str | None, action: Any) -> Any:
    """``action(engine)``; registry and database problems become one-line click errors."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from extractors.lifecycle.registry import RegistryError
    from extractors.llm.adapters import AdapterError

    engine = _engine(url)
    try:
        return action(engine)
    except (RegistryError, AdapterError) as exc:
        raise click.ClickException(str(exc)) from None
    except (OperationalError, ProgrammingError) as exc:
        raise click.ClickException(
            f"warehouse error ({type(exc.orig).__name__}); is it migrated (`rrief warehouse upgrade`)?"
        ) from None
    finally:
        engine.dispose()


@click.group("adapters")
def adapters() -> None:
    """The adapter registry (ops.adapters): which adapter each schema runs in production."""


@adapters.command("list")
@click.option("--schema", "schema_name", default=None, help="Only this schema (cxr, mammo, ...).")
@URL_OPTION
def list_command(schema_name: str | None, url: str | None) -> None:
    """One line per adapter: id, schema, status, micro-F1 on the frozen test split, training data."""
    from extractors.lifecycle.registry import describe, list_adapters

    records = _run(url, lambda e: list_adapters(e, schema_name))
    for line in describe(records) or ["no adapters registered"]:
        click.echo(line)


@adapters.command("show")
@click.argument("adapter_id")
@URL_OPTION
def show(adapter_id: str, url: str | None) -> None:
    """Everything the registry holds about ADAPTER_ID, as JSON."""
    from extractors.lifecycle.registry import get_adapter

    record = _run(url, lambda e: get_adapter(e, adapter_id))
    click.echo(json.dumps(record.model_dump(mode="json"), indent=2))


@adapters.command("register")
@click.argument("path", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="JSON of its scores on the frozen test split (the gate's 'candidate' object).",
)
@BY_OPTION
@URL_OPTION
def register_command(
    path: Path, metrics_path: Path | None, by: str | None, url: str | None
) -> None:
    """Register the adapter directory PATH (made by `rrief train`) as a candidate."""
    from extractors.lifecycle.registry import record_from_dir, register

    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path else None
    record = _run(
        url, lambda e: register(e, record_from_dir(path, by or getpass.getuser(), metrics))
    )
    click.echo(f"{record.adapter_id}: {record.status} ({record.schema_name})")


@adapters.command("promote")
@click.argument("adapter_id")
@BY_OPTION
@URL_OPTION
def promote_command(adapter_id: str, by: str | None, url: str | None) -> None:
    """Make ADAPTER_ID its schema's production adapter; the previous one is retired in the same
    transaction. Then run the rrief_reextract DAG (a promotion by the rrief_train DAG triggers
    it) to re-label the warehouse."""
    from extractors.lifecycle.registry import promote

    promoted, retired = _run(url, lambda e: promote(e, adapter_id, by or getpass.getuser()))
    suffix = f"; retired {retired.adapter_id}" if retired else ""
    click.echo(f"{promoted.adapter_id}: production for {promoted.schema_name}{suffix}")


@adapters.command("retire")
@click.argument("adapter_id")
@BY_OPTION
@URL_OPTION
def retire_command(adapter_id: str, by: str | None, url: str | None) -> None:
    """Retire ADAPTER_ID (a retired production adapter leaves its schema without one)."""
    from extractors.lifecycle.registry import retire

    record = _run(url, lambda e: retire(e, adapter_id, by or getpass.getuser()))
    click.echo(f"{record.adapter_id}: {record.status}")
