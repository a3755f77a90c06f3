"""Engines for the warehouse: the configured URL (``RRIEF_WAREHOUSE_URL``) or, when it is empty,
an embedded PostgreSQL in ``./.rrief/pgdata``."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, make_url

from extractors.settings import get_settings

_DRIVER_ALIASES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for bare ``postgres://`` / ``postgresql://`` URLs."""
    parsed = make_url(url)
    driver = _DRIVER_ALIASES.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def resolve_url(url: str | None = None) -> str:
    """The warehouse URL: ``url`` if given, else the setting, else the embedded server's."""
    chosen = url or get_settings().warehouse_url
    if chosen:
        return normalize_url(chosen)
    from extractors.warehouse.embedded import start_embedded

    return start_embedded()


def make_engine(url: str | None = None, **kwargs: object) -> Engine:
    """A new engine for the warehouse (callers ``dispose()`` it when done)."""
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(resolve_url(url), **kwargs)


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)
