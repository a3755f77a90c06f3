"""Alembic environment: runs the warehouse migrations on a connection handed over in code.

``extractors.warehouse.migrate.upgrade(url)`` builds the ``Config`` in code and passes an open
connection in ``config.attributes["connection"]``; with the plain ``alembic`` CLI the URL comes
from ``sqlalchemy.url`` or ``RRIEF_WAREHOUSE_URL``. The version table lives in ``ops`` so that
nothing of ours sits in ``public``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, text

from extractors.warehouse.models import OPS, metadata

VERSION_TABLE_SCHEMA = OPS


def _run(connection: Connection) -> None:
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {VERSION_TABLE_SCHEMA}"))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=VERSION_TABLE_SCHEMA,
        include_schemas=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(
            "no database to migrate: run `rrief warehouse upgrade` (or call "
            "extractors.warehouse.migrate.upgrade with a URL or engine)"
        )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported; run the migrations on a database")
run_migrations_online()
