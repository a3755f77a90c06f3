"""``rrief annotate``: sample reports into tasks, serve the workbench, manage annotator accounts,
measure agreement and export the gold labels ``rrief train`` and ``rrief evaluate`` read.

Settings are read here (the edge) and passed down as values.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

import click

DEFAULT_GUIDELINES = Path(__file__).resolve().parents[2] / "docs" / "annotation.md"
URL_OPTION = click.option(
    "--url", default=None, help="Warehouse SQLAlchemy URL (default: RRIEF_WAREHOUSE_URL)."
)
SCHEMA_HELP = (
    "Schema id (cxr, cxr@1, ...) or a schema file (e.g. examples/schemas/chestxray14.yaml)."
)


def _schema(ref: str) -> Any:
    """A schema id or file, site schemas from RRIEF_SCHEMA_PATH included."""
    from extractors.schemas import SchemaError, get_schema
    from extractors.settings import get_settings

    try:
        return get_schema(ref, get_settings().schema_dirs())
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None


def _engine(url: str | None) -> Any:
    """An engine on ``--url``, else RRIEF_WAREHOUSE_URL, else the embedded server."""
    from extractors.settings import get_settings
    from extractors.warehouse.db import make_engine

    return make_engine(url or get_settings().warehouse_url)


def _extractor(backend: str, schema: Any, settings: Any) -> tuple[Any, str]:
    """The configured extractor of ``backend`` for ``schema`` and, when there is none, why."""
    from extractors.extract import BackendError
    from extractors.extract.configured import configured_extractor

    try:
        return configured_extractor(settings, backend, schema), ""
    except (BackendError, ValueError, OSError) as exc:
        return None, str(exc).split(";")[0]


def _database_errors() -> tuple[type[Exception], ...]:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from extractors.gold import GoldError

    return (OperationalError, ProgrammingError, GoldError)


@click.group()
def annotate() -> None:
    """Annotate reports in the browser: tasks, accounts, agreement, gold export."""


@annotate.command("add-user")
@click.argument("username")
@click.option("--pseudonym", default=None, help="What labels record (default: the next A<n>).")
@click.option("--adjudicator", is_flag=True, help="May settle disagreements.")
@click.option("--reset", is_flag=True, help="Set a new password for an existing account.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@URL_OPTION
def add_user(
    username: str,
    pseudonym: str | None,
    adjudicator: bool,
    reset: bool,
    password_stdin: bool,
    url: str | None,
) -> None:
    """Create an annotator account (the password is stored as an argon2id hash)."""
    from extractors.annotate.auth import hash_password
    from extractors.gold import annotations as store

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    engine = _engine(url)
    try:
        if reset:
            store.set_password(engine, username, hashed)
            click.echo(f"new password set for {username}")
            return
        account = store.add_annotator(
            engine, username, hashed, pseudonym=pseudonym, adjudicator=adjudicator
        )
    except _database_errors() as exc:
        raise click.ClickException(_why(exc)) from None
    finally:
        engine.dispose()
    role = "adjudicator" if account.adjudicator else "annotator"
    click.echo(f"{role} {account.username} created; labels record them as {account.pseudonym}")


@annotate.command("sample")
@click.option("--schema", "schema_ref", required=True, help=SCHEMA_HELP)
@click.option("--n", "n", type=click.IntRange(1, 100_000), required=True, help="Tasks to create.")
@click.option(
    "--strategy",
    type=click.Choice(["random", "stratified", "disagreement"]),
    default="random",
    show_default=True,
)
@click.option(
    "--double",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of the tasks given to two annotators (for agreement).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random order.")
@click.option("--batch", default=None, help="Name of this batch (default: schema-strategy-time).")
@click.option(
    "--pool",
    type=click.IntRange(1, 1_000_000),
    default=5000,
    show_default=True,
    help="Candidate reports the extractors look at (stratified, disagreement).",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr."
)
@URL_OPTION
def sample(
    schema_ref: str,
    n: int,
    strategy: str,
    double: float,
    seed: int,
    batch: str | None,
    pool: int,
    progress: bool,
    url: str | None,
) -> None:
    """Create N tasks from reports of the schema's type that have no task for it yet.

    stratified balances on the current extractor's positive labels (RRIEF_BACKEND, rules by
    default); disagreement picks reports where the rules and the current adapter (or the
    newest stored non-rules extraction) disagree, or where the rules said uncertain.
    """
    from tqdm import tqdm

    from extractors.annotate.sampling import sample_tasks
    from extractors.settings import get_settings

    settings = get_settings()
    schema = _schema(schema_ref)
    extractor = rules = against = None
    if strategy != "random":
        extractor, why = _extractor(settings.backend, schema, settings)
        rules = extractor if settings.backend == "rules" else _extractor("rules", schema, settings)[0]  # fmt: skip
        against = extractor if extractor is not None and settings.backend != "rules" else None
        if extractor is None and why:
            click.echo(f"no {settings.backend} extractor for {schema.id}: {why}", err=True)
    engine = _engine(url)
    bar = tqdm(desc="extracting", unit="report", disable=not progress or strategy == "random")
    try:
        result = sample_tasks(
            engine,
            schema,
            n,
            strategy,  # type: ignore[arg-type]
            double=double,
            seed=seed,
            batch=batch,
            extractor=extractor,
            rules=rules,
            against=against,
            pool=pool,
            progress=bar.update,
        )
    except _database_errors() as exc:
        raise click.ClickException(_why(exc)) from None
    finally:
        bar.close()
        engine.dispose()
    click.echo(
        f"{result.created} {result.strategy} tasks for {result.schema_id} in batch "
        f"{result.batch} ({result.double} double-annotated; {result.candidates} candidates)"
    )
    for reason, count in list(result.reasons.items())[:12]:
        click.echo(f"  {count:>5}  {reason}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


@annotate.command("serve")
@click.option(
    "--schema",
    "schema_refs",
    multiple=True,
    help=SCHEMA_HELP + " Repeatable; default: every schema version that has tasks.",
)
@click.option("--host", default=None, help="Address to bind (default: RRIEF_ANNOTATE_HOST).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Default: RRIEF_ANNOTATE_PORT."
)
@click.option(
    "--backend",
    default=None,
    help="Extractor that pre-fills the pages (default: RRIEF_BACKEND, rules unless set).",
)
@click.option(
    "--guidelines",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Markdown guidelines shown at /guidelines (default: docs/annotation.md).",
)
@URL_OPTION
def serve(
    schema_refs: tuple[str, ...],
    host: str | None,
    port: int | None,
    backend: str | None,
    guidelines: Path | None,
    url: str | None,
) -> None:
    """Serve the annotation workbench (binds 127.0.0.1 unless told otherwise).

    The app's database connections run as the rrief_annotator role: the annotation schema and
    the text of tasked reports, nothing else.
    """
    import uvicorn

    from extractors.annotate.app import create_app
    from extractors.annotate.prefill import Prefiller
    from extractors.gold import annotations as store
    from extractors.llm.server import is_local_bind
    from extractors.settings import get_settings

    settings = get_settings()
    host = host or settings.annotate_host
    port = port or settings.annotate_port
    backend = backend or settings.backend
    admin = _engine(url)
    try:
        stored = store.schema_versions(admin)
    except _database_errors() as exc:
        raise click.ClickException(_why(exc)) from None
    finally:
        admin.dispose()
    schemas = {s.id: s for s in (_schema(ref) for ref in schema_refs)}
    if not schema_refs:
        from extractors.schemas import SchemaError, get_schema

        for sid in stored:
            try:
                schemas[sid] = get_schema(sid, settings.schema_dirs())
            except SchemaError:
                click.echo(f"tasks of {sid} are not served: pass its schema file with --schema", err=True)  # fmt: skip
    if not schemas:
        raise click.ClickException("no tasks yet: create some with `rrief annotate sample` first")
    prefillers = {}
    for sid, schema in schemas.items():
        extractor, why = _extractor(backend, schema, settings)
        prefillers[sid] = Prefiller(schema, extractor, why)
        used = f"{extractor.backend} {extractor.version}" if extractor else f"nothing ({why})"
        click.echo(f"{sid}: {stored.get(sid, 0)} tasks, pre-filled by {used}", err=True)
    secret = settings.annotate_session_secret
    if not secret:
        secret = secrets.token_hex(32)
        click.echo(
            "RRIEF_ANNOTATE_SESSION_SECRET is empty: sessions end when this server stops", err=True
        )
    guidelines = guidelines or (DEFAULT_GUIDELINES if DEFAULT_GUIDELINES.is_file() else None)
    engine = annotator_engine(url)
    app = create_app(
        engine,
        schemas,
        prefillers,
        session_secret=secret,
        max_body_bytes=settings.annotate_max_body_bytes,
        secure_cookie=settings.annotate_secure_cookie,
        guidelines_markdown=guidelines.read_text(encoding="utf-8") if guidelines else None,
    )
    if not is_local_bind(host):
        click.secho(
            f"WARNING: binding {host}: anyone who can reach this address can try to sign in and "
            "the pages carry report text. Serve it on a trusted network only, behind TLS.",
            fg="yellow",
            bold=True,
            err=True,
        )
    click.echo(f"RRIEF annotation on http://{host}:{port}/ (Ctrl+C stops it)", err=True)
    try:
        uvicorn.run(app, host=host, port=port, server_header=False, proxy_headers=False)
    finally:
        engine.dispose()


def annotator_engine(url: str | None) -> Any:
    """An engine whose every connection runs as the rrief_annotator role (checked now)."""
    from sqlalchemy import event, text

    from extractors.warehouse.roles import ANNOTATOR_ROLE

    engine = _engine(url)

    @event.listens_for(engine, "connect")
    def _as_annotator(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cur:
            cur.execute(f'SET ROLE "{ANNOTATOR_ROLE}"')
        dbapi_connection.commit()

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM annotation.tasks"))
    except _database_errors() as exc:
        engine.dispose()
        raise click.ClickException(
            f"the workbench cannot work as {ANNOTATOR_ROLE}: {_why(exc)} "
            "(run `rrief warehouse upgrade`; the connecting user must be a member of the role)"
        ) from None
    return engine


def _why(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


@annotate.command("agreement")
@click.option("--schema", "schema_ref", required=True, help=SCHEMA_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@URL_OPTION
def agreement(schema_ref: str, as_json: bool, url: str | None) -> None:
    """Cohen's kappa per label and pooled over all labels, and the tasks where the two
    annotators of a double task disagree (settle them on the /adjudicate page)."""
    from extractors.annotate.agreement import agreement_report

    schema = _schema(schema_ref)
    engine = _engine(url)
    try:
        report = agreement_report(engine, schema)
    except _database_errors() as exc:
        raise click.ClickException(_why(exc)) from None
    finally:
        engine.dispose()
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return

    def fmt(x: float | None, pct: bool = False) -> str:
        if x is None:
            return "n/a"
        return f"{100 * x:.1f}%" if pct else f"{x:.3f}"

    click.echo(f"{schema.id}: {report.n_pairs} double-annotated tasks with two submissions")
    if not report.n_pairs:
        return
    width = max(len(lab.path) for lab in report.labels)
    click.echo(f"  {'label':<{width}}  {'n':>5}  {'agree':>7}  {'kappa':>6}")
    for lab in report.labels:
        click.echo(
            f"  {lab.path:<{width}}  {lab.n:>5}  {fmt(lab.agreement, True):>7}  {fmt(lab.kappa):>6}"
        )
    click.echo(
        f"  {'overall (pooled)':<{width}}  {report.n_pairs:>5}  "
        f"{fmt(report.overall_agreement, True):>7}  {fmt(report.overall_kappa):>6}"
    )
    open_ = [d for d in report.disagreements if not d.adjudicated]
    click.echo(
        f"{len(report.disagreements)} tasks with disagreements ({len(open_)} not adjudicated yet)"
    )
    for d in report.disagreements:
        fields = "; ".join(f"{p}: {a} / {b}" for p, (a, b) in d.fields.items())
        state = "adjudicated" if d.adjudicated else "open"
        click.echo(f"  task {d.task_id} ({' vs '.join(d.annotators)}, {state}): {fields}")


@annotate.command("export")
@click.option("--schema", "schema_ref", required=True, help=SCHEMA_HELP)
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="JSONL."
)
@click.option(
    "--split",
    type=click.Choice(["train", "test"]),
    default=None,
    help="Only one split (fixed by a hash of the report key). Default: both.",
)
@URL_OPTION
def export(schema_ref: str, output: Path, split: str | None, url: str | None) -> None:
    """Write the final labels (adjudicated, or submitted by every annotator a task wants, in
    agreement) as gold JSONL for `rrief train` and `rrief evaluate --gold-format jsonl`."""
    from extractors.gold import annotations as store

    schema = _schema(schema_ref)
    engine = _engine(url)
    try:
        result = store.export_gold(engine, schema, split)  # type: ignore[arg-type]
    except _database_errors() as exc:
        raise click.ClickException(_why(exc)) from None
    finally:
        engine.dispose()
    digest = store.write_gold_jsonl(result, output)
    counts = {s: sum(1 for v in result.splits.values() if v == s) for s in ("train", "test")}
    click.echo(
        f"{len(result.records)} {schema.id} gold records -> {output} "
        f"(train {counts['train']}, test {counts['test']}; sha256 {digest[:16]})"
    )
    if result.left_out:
        why: dict[str, int] = {}
        for reason in result.left_out.values():
            why[reason] = why.get(reason, 0) + 1
        click.echo(f"{len(result.left_out)} tasks left out: {json.dumps(why)}", err=True)
