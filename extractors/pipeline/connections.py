"""Airflow Connections of the pipeline as SQLAlchemy URLs.

``rrief_warehouse`` (the PostgreSQL warehouse) and ``rrief_ris`` (a SQL RIS) are Airflow
Connections: the DAG's Python tasks read them here and dbt reads ``rrief_warehouse`` through
cosmos' Postgres profile mapping, so one definition serves both (docker-compose passes them as
``AIRFLOW_CONN_RRIEF_WAREHOUSE`` / ``AIRFLOW_CONN_RRIEF_RIS``). ``RRIEF_WAREHOUSE_URL`` and
``RRIEF_RIS_URL`` stay for the CLI and are the fallback when a Connection is not defined.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import URL

WAREHOUSE_CONN_ID = "rrief_warehouse"
RIS_CONN_ID = "rrief_ris"

# Airflow connection type -> SQLAlchemy driver; another driver with extra {"sqlalchemy_driver": ...}
DRIVERS = {"postgres": "postgresql+psycopg", "mysql": "mysql+pymysql", "mssql": "mssql+pyodbc"}


class ConnectionLike(Protocol):
    """The fields of an Airflow Connection this module reads."""

    conn_type: str | None
    host: str | None
    login: str | None
    password: str | None
    schema: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def sqlalchemy_url(conn: ConnectionLike) -> str:
    """The SQLAlchemy URL of a Connection: ``sqlite`` takes the file path from ``host``; other
    types map ``host``/``port``/``login``/``password`` and ``schema`` (the database, as in
    Airflow's Postgres connection). A host that is a directory (``/run/postgresql``) becomes the
    socket ``?host=`` parameter."""
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        if not conn.host:
            raise ValueError("a sqlite Connection needs the database file path as its host")
        return f"sqlite:///{conn.host}"
    driver = conn.extra_dejson.get("sqlalchemy_driver") or DRIVERS.get(conn_type, conn_type)
    if not driver:
        raise ValueError("the Connection has no conn_type")
    host = conn.host or None
    query = {}
    if host and host.startswith("/"):
        query, host = {"host": host}, None
    return URL.create(
        driver,
        username=conn.login or None,
        password=conn.password or None,
        host=host,
        port=conn.port or None,
        database=conn.schema or None,
        query=query,
    ).render_as_string(hide_password=False)


def connection_json(url: str, *, password_placeholder: str = "trust") -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON form) for a PostgreSQL SQLAlchemy URL, or for a SQLite
    file. Cosmos' profile mapping requires a password; a server that trusts the client (the
    embedded PostgreSQL) ignores the placeholder."""
    import json

    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": parsed.database})
    host = parsed.host or parsed.query.get("host") or "127.0.0.1"
    if isinstance(host, tuple):
        host = host[0]
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": host,
            "port": parsed.port or 5432,
            "login": parsed.username or "postgres",
            "password": parsed.password or password_placeholder,
            "schema": parsed.database or "",
        }
    )
