"""Database roles and grants, idempotent: ``rrief_loader`` writes ``raw``/``ops`` and builds the
dbt schemas; ``researcher`` reads ``marts`` and nothing else (no report text, no raw layer).

Roles are cluster-wide, grants per database: run ``ensure_roles`` once per warehouse database
(after ``migrate.upgrade``), again after adding schemas. Safe to run concurrently.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from extractors.warehouse.load import transaction
from extractors.warehouse.models import DBT_SCHEMAS, OPS, RAW

LOADER_ROLE = "rrief_loader"
RESEARCHER_ROLE = "researcher"
RESEARCH_SCHEMA = "marts"
PRIVATE_SCHEMAS = (RAW, OPS, "staging", "intermediate")


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _create_role(conn: Connection, role: str, password: str | None) -> None:
    """CREATE ROLE (NOLOGIN) unless it exists, tolerating a concurrent creator; with a password
    give it LOGIN. Without one an existing role's LOGIN is left as the deployment set it."""
    q = _quote(conn, role)
    conn.execute(
        text(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {q} NOLOGIN; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    )
    if password is not None:
        # Passwords cannot be bound parameters in DDL; quote as a literal ourselves.
        literal = "'" + password.replace("'", "''") + "'"
        conn.exec_driver_sql(f"ALTER ROLE {q} LOGIN PASSWORD {literal}".replace("%", "%%"))


def ensure_roles(
    bind: Engine | Connection,
    *,
    loader_password: str | None = None,
    researcher_password: str | None = None,
    table_creators: tuple[str, ...] = (),
) -> None:
    """Create the roles and apply the grants in the connected database.

    A role gets LOGIN only when its password is given (a new role is otherwise NOLOGIN and people
    or services reach it through ``GRANT researcher TO alice`` / ``SET ROLE``). ``table_creators``
    are the roles that create mart tables (dbt's user): tables they create later are readable by
    the researcher through default privileges; the current user is always included.
    """
    for name in (LOADER_ROLE, RESEARCHER_ROLE):
        if not name.isidentifier():
            raise ValueError(f"bad role name {name!r}")
    with transaction(bind) as conn:
        _create_role(conn, LOADER_ROLE, loader_password)
        _create_role(conn, RESEARCHER_ROLE, researcher_password)
        loader, researcher = _quote(conn, LOADER_ROLE), _quote(conn, RESEARCHER_ROLE)
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        me = conn.execute(text("SELECT current_user")).scalar_one()
        conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote(conn, database)} TO {researcher}"))
        conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote(conn, database)} TO {loader}"))

        for schema in (RAW, OPS, *DBT_SCHEMAS):
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {_quote(conn, schema)}"))

        # Loader: read/write raw and ops (tables and their sequences), build the dbt schemas.
        for schema in (RAW, OPS):
            s = _quote(conn, schema)
            conn.execute(text(f"GRANT USAGE ON SCHEMA {s} TO {loader}"))
            conn.execute(
                text(
                    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {loader}"
                )
            )
            conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {loader}"))
        for schema in DBT_SCHEMAS:
            conn.execute(text(f"GRANT USAGE, CREATE ON SCHEMA {_quote(conn, schema)} TO {loader}"))

        # Researcher: marts only. Nothing granted elsewhere; revoke anything granted by hand.
        for schema in PRIVATE_SCHEMAS:
            s = _quote(conn, schema)
            conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {researcher}"))
            conn.execute(text(f"REVOKE ALL ON SCHEMA {s} FROM {researcher}"))
        conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {researcher}"))
        marts = _quote(conn, RESEARCH_SCHEMA)
        conn.execute(text(f"GRANT USAGE ON SCHEMA {marts} TO {researcher}"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {marts} TO {researcher}"))
        for creator in dict.fromkeys((me, LOADER_ROLE, *table_creators)):
            c = _quote(conn, creator)
            conn.execute(
                text(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {c} IN SCHEMA {marts} "
                    f"GRANT SELECT ON TABLES TO {researcher}"
                )
            )
        for creator in dict.fromkeys((me, *table_creators)):
            c = _quote(conn, creator)
            for schema in (RAW, OPS):
                conn.execute(
                    text(
                        f"ALTER DEFAULT PRIVILEGES FOR ROLE {c} IN SCHEMA {_quote(conn, schema)} "
                        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {loader}"
                    )
                )
