"""Pytest fixtures for tests that need PostgreSQL (load with ``pytest_plugins``).

``pg_url``: a fresh empty database for the session. ``warehouse_url``/``warehouse_engine``: a
fresh database with migrations and roles applied, for the session. ``empty_warehouse``: that
engine with every warehouse table emptied before the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from tests import pg


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with pg.throwaway_database() as url:
        yield url


@pytest.fixture(scope="session")
def warehouse_url() -> Iterator[str]:
    with pg.migrated_warehouse() as url:
        yield url


@pytest.fixture(scope="session")
def warehouse_engine(warehouse_url: str) -> Iterator[Engine]:
    engine = create_engine(warehouse_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def empty_warehouse(warehouse_engine: Engine) -> Engine:
    pg.truncate_warehouse(warehouse_engine)
    return warehouse_engine
