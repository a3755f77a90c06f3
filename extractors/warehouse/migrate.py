"""Run the Alembic migrations from code: ``upgrade(url)`` brings a warehouse to the newest
revision (the ``rrief warehouse upgrade`` command and the pipeline call this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, text

from extractors.warehouse.db import resolve_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE_SCHEMA = "ops"
# Two DAG tasks may upgrade at once; an advisory lock makes the second wait for the first.
_LOCK_ID = 0x52524945  # "RRIE"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` built in code (no alembic.ini), optionally bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _engine(bind: str | Engine | None) -> tuple[Engine, bool]:
    if isinstance(bind, Engine):
        return bind, False
    return create_engine(resolve_url(bind)), True


def upgrade(bind: str | Engine | None = None, revision: str = "head") -> str | None:
    """Migrate the warehouse at ``bind`` (URL or engine; empty: embedded) to ``revision``.

    Runs in one transaction (PostgreSQL has transactional DDL): a failing migration leaves the
    database as it was. Returns the revision the database is at afterwards.
    """
    engine, owned = _engine(bind)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            command.upgrade(alembic_config(conn), revision)
        return current_revision(engine)
    finally:
        if owned:
            engine.dispose()


def downgrade(bind: str | Engine | None, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"`` drops every warehouse table)."""
    engine, owned = _engine(bind)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            command.downgrade(alembic_config(conn), revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(bind: str | Engine | None = None) -> str | None:
    """The revision the database is at, or ``None`` for a database never migrated."""
    engine, owned = _engine(bind)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"version_table_schema": VERSION_TABLE_SCHEMA}
            )
            return ctx.get_current_revision()
    finally:
        if owned:
            engine.dispose()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class WarehouseRevisionError(RuntimeError):
    """The warehouse is not at the revision this code needs (migrations are a deployment step)."""


def require_head(bind: str | Engine | None = None) -> str:
    """The warehouse's revision when it is the newest this code knows, else a clear
    :class:`WarehouseRevisionError` saying what to run. Never migrates: ``rrief warehouse
    upgrade`` (airflow-init in docker compose) does that, once per deployment."""
    current, head = current_revision(bind), head_revision()
    if current == head and head is not None:
        return head
    found = current or "none (never migrated)"
    raise WarehouseRevisionError(
        f"the warehouse is at revision {found}, this code needs {head}: run "
        "`rrief warehouse upgrade` (in docker compose the airflow-init service does) and "
        "rerun; the daily DAG does not migrate"
    )
