"""Throwaway PostgreSQL databases for tests (shared by the warehouse, pipeline, DAG and dbt tests).

Everything goes through ONE variable, ``RRIEF_TEST_DATABASE_URL`` (default: the local server at
127.0.0.1:5432). Each test session creates its own ``rrief_test_<random>`` database on that
server and drops it at the end, so parallel runs never collide and the server's own databases
are never touched. When no server answers, tests skip with a clear message — unless
``RRIEF_REQUIRE_POSTGRES=1`` (set by CI), where they fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DB_PREFIX = "rrief_test_"
# Text-like column types that a raw identifier could hide in.
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "name")


def admin_url() -> str:
    """The server to create throwaway databases on (``RRIEF_TEST_DATABASE_URL``)."""
    url = os.environ.get("RRIEF_TEST_DATABASE_URL") or DEFAULT_ADMIN_URL
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _admin_engine() -> Engine:
    return create_engine(admin_url(), isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def require_postgres() -> None:
    """Skip (or, with ``RRIEF_REQUIRE_POSTGRES=1``, fail) when the test server is unreachable."""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        where = make_url(admin_url()).render_as_string(hide_password=True)
        msg = (
            f"PostgreSQL not reachable at {where} (set RRIEF_TEST_DATABASE_URL, or run "
            f".ci/start-postgres.sh): {exc.orig}"
        )
        if os.environ.get("RRIEF_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    finally:
        engine.dispose()


def create_database(prefix: str = DB_PREFIX) -> str:
    """Create a fresh, empty database and return its URL."""
    name = f"{prefix}{secrets.token_hex(6)}"
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database`` (refuses any other name)."""
    name = make_url(url).database or ""
    if not name.startswith(DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a throwaway test database")
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database for the ``with`` block, dropped afterwards."""
    require_postgres()
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@contextmanager
def migrated_warehouse() -> Iterator[str]:
    """A fresh database with the warehouse migrations and roles applied; yields its URL."""
    from extractors.warehouse.migrate import upgrade
    from extractors.warehouse.roles import ensure_roles

    with throwaway_database() as url:
        engine = create_engine(url)
        try:
            upgrade(engine)
            ensure_roles(engine)
        finally:
            engine.dispose()
        yield url


def truncate_warehouse(engine: Engine) -> None:
    """Empty every warehouse table (raw and ops), restart their id sequences and drop what dbt
    built (the incremental models would otherwise keep rows of reports no longer in raw; the
    pipeline itself never deletes a report)."""
    from extractors.warehouse.models import DBT_SCHEMAS, WAREHOUSE_TABLES

    names = ", ".join(f"{t.schema}.{t.name}" for t in WAREHOUSE_TABLES)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        built = conn.execute(
            text(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = ANY(:schemas)"
            ),
            {"schemas": list(DBT_SCHEMAS)},
        ).all()
        for schema, name, kind in built:
            what = "VIEW" if kind == "VIEW" else "TABLE"
            conn.execute(text(f'DROP {what} IF EXISTS "{schema}"."{name}" CASCADE'))


def text_columns(engine: Engine) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text-like column of every user table and view."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.table_schema, c.table_name, c.column_name "
                "FROM information_schema.columns c "
                "WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') "
                "AND c.table_schema NOT LIKE 'pg_toast%' AND c.data_type = ANY(:types) "
                "ORDER BY 1, 2, 3"
            ),
            {"types": list(TEXT_TYPES)},
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def find_strings(engine: Engine, needles: Iterable[str]) -> list[tuple[str, str]]:
    """Every (``schema.table.column``, needle) where a needle occurs as a substring of a value,
    across all text/json columns of all tables — the "no raw identifier anywhere" check."""
    needles = [n for n in dict.fromkeys(needles) if n]
    if not needles:
        return []
    hits: list[tuple[str, str]] = []
    with engine.connect() as conn:
        for schema, table, column in text_columns(engine):
            for needle in needles:
                found = conn.execute(
                    text(
                        f'SELECT 1 FROM "{schema}"."{table}" '
                        f'WHERE strpos("{column}"::text, :needle) > 0 LIMIT 1'
                    ),
                    {"needle": needle},
                ).first()
                if found:
                    hits.append((f"{schema}.{table}.{column}", needle))
    return hits


def table_checksums(engine: Engine, exclude_schemas: Iterable[str] = ("ops",)) -> dict[str, str]:
    """``schema.table`` -> row count and md5 of every row's text, for every table and view
    outside ``exclude_schemas``: equal checksums mean byte-identical contents."""
    skip = ["pg_catalog", "information_schema", *exclude_schemas]
    with engine.connect() as conn:
        names = conn.execute(
            text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema <> ALL(:skip) AND table_schema NOT LIKE 'pg_%' ORDER BY 1, 2"
            ),
            {"skip": skip},
        ).all()
        return {
            f"{s}.{t}": conn.execute(
                text(
                    f"SELECT count(*) || ':' || md5(coalesce(string_agg(r::text, E'\\n' "
                    f'ORDER BY r::text), \'\')) FROM "{s}"."{t}" r'
                )
            ).scalar_one()
            for s, t in names
        }
