"""An embedded PostgreSQL (the ``pgserver`` wheel) for laptops and the demo: no Docker, no root
set-up. Used only when ``RRIEF_WAREHOUSE_URL`` is empty.

Run as root, pgserver creates a ``pgserver`` system user that owns the data directory and the
server process (PostgreSQL refuses to run as root). The server listens on a Unix socket only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from sqlalchemy import create_engine, make_url, text

DEFAULT_PGDATA = Path(".rrief") / "pgdata"
DEFAULT_DATABASE = "rrief"

log = logging.getLogger("rrief.warehouse")


def start_embedded(
    pgdata: Path | str = DEFAULT_PGDATA,
    database: str = DEFAULT_DATABASE,
    cleanup_mode: Literal["stop", "delete"] | None = "stop",
) -> str:
    """Start (or reuse) a server in ``pgdata``, make sure ``database`` exists, return its URL.

    ``cleanup_mode="stop"`` stops the server when the last Python process using it exits; ``None``
    leaves it running for later processes (``psql``, dbt) to reuse.
    """
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pipeline extra not installed
        raise RuntimeError(
            "RRIEF_WAREHOUSE_URL is empty and the embedded server needs the 'pgserver' package "
            "(pip install 'rrief[pipeline]')"
        ) from exc

    pgdata = Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
    admin = make_url(server.get_uri()).set(drivername="postgresql+psycopg", password=None)
    _ensure_database(admin.render_as_string(hide_password=False), database)
    url = admin.set(database=database).render_as_string(hide_password=False)
    log.info("embedded PostgreSQL running in %s (database %s)", pgdata, database)
    return url


def _ensure_database(admin_url: str, database: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        engine.dispose()


def stop_embedded(pgdata: Path | str = DEFAULT_PGDATA) -> None:
    """Stop the server this process started in ``pgdata`` (and delete the data directory if it
    was started with ``cleanup_mode="delete"``). A no-op when none is running here."""
    import pgserver

    resolved = Path(pgdata).expanduser().resolve()
    server = pgserver.PostgresServer._instances.get(resolved)
    if server is not None:
        server.cleanup()
