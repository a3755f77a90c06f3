"""Engines for the warehouse: a given URL (``RRIEF_WAREHOUSE_URL`` at the edges) or, when it is
empty, an embedded PostgreSQL in ``./.rrief/pgdata``."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, make_url

_DRIVER_ALIASES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for bare ``postgres://`` / ``postgresql://`` URLs."""
    parsed = make_url(url)
    driver = _DRIVER_ALIASES.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def resolve_url(url: str | None) -> str:
    """The warehouse URL: ``url`` (normalized) if not empty, else the embedded server's."""
    if url:
        return normalize_url(url)
    from extractors.warehouse.embedded import start_embedded

    return start_embedded()


def make_engine(url: str | None, **kwargs: object) -> Engine:
    """A new engine on ``url`` (empty: the embedded server); callers ``dispose()`` it."""
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(resolve_url(url), **kwargs)


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)
