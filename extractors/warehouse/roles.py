"""Database roles and grants, idempotent: ``rrief_loader`` writes ``raw``/``ops`` and builds the
dbt schemas; the researcher role (``RRIEF_RESEARCHER_ROLE``, default ``researcher``; the same
setting names it in dbt's grants and the demo) reads ``marts`` and nothing else (no report text, no raw layer, no
annotations); ``rrief_annotator`` is the annotation workbench's role: it reads the annotation
schema (tasked reports' text only, through the view ``annotation.task_reports``), appends label
rows and can never update or delete one, and reads nothing of raw, ops or the marts.

Roles are cluster-wide, grants per database: run ``ensure_roles`` once per warehouse database
(after ``migrate.upgrade``), again after adding schemas. Safe to run concurrently.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from extractors.warehouse.load import transaction
from extractors.warehouse.models import ANNOTATION, DBT_SCHEMAS, OPS, RAW

LOADER_ROLE = "rrief_loader"
RESEARCHER_ROLE = "researcher"  # the default of RRIEF_RESEARCHER_ROLE
ANNOTATOR_ROLE = "rrief_annotator"
RESEARCH_SCHEMA = "marts"
PRIVATE_SCHEMAS = (RAW, OPS, "staging", "intermediate", ANNOTATION)
# What the workbench may read, and the one table it may append to.
ANNOTATOR_READS = ("annotators", "tasks", "labels", "task_reports")
ANNOTATOR_APPENDS = "labels"


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
    researcher_role: str = RESEARCHER_ROLE,
    loader_password: str | None = None,
    researcher_password: str | None = None,
    table_creators: tuple[str, ...] = (),
) -> None:
    """Create the roles and apply the grants in the connected database.

    A role gets LOGIN only when its password is given (a new role is otherwise NOLOGIN and people
    or services reach it through ``GRANT researcher TO alice`` / ``SET ROLE``). ``table_creators``
    are the roles that create mart tables (dbt's user): tables they create later are readable by
    the researcher through default privileges; the current user is always included.
    ``researcher_role`` is the only role created for researchers (no ``researcher`` besides it).
    """
    for name in (LOADER_ROLE, researcher_role, ANNOTATOR_ROLE):
        if not name.isidentifier():
            raise ValueError(f"bad role name {name!r}")
    with transaction(bind) as conn:
        _create_role(conn, LOADER_ROLE, loader_password)
        _create_role(conn, researcher_role, researcher_password)
        _create_role(conn, ANNOTATOR_ROLE, None)
        loader, researcher = _quote(conn, LOADER_ROLE), _quote(conn, researcher_role)
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        me = conn.execute(text("SELECT current_user")).scalar_one()
        conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote(conn, database)} TO {researcher}"))
        conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote(conn, database)} TO {loader}"))

        for schema in (RAW, OPS, ANNOTATION, *DBT_SCHEMAS):
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
        _grant_annotator(conn, database)
        for creator in dict.fromkeys((me, *table_creators)):
            c = _quote(conn, creator)
            for schema in (RAW, OPS):
                conn.execute(
                    text(
                        f"ALTER DEFAULT PRIVILEGES FOR ROLE {c} IN SCHEMA {_quote(conn, schema)} "
                        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {loader}"
                    )
                )


def _grant_annotator(conn: Connection, database: str) -> None:
    """The workbench role: read the annotation schema, append labels; nothing else anywhere."""
    annotator = _quote(conn, ANNOTATOR_ROLE)
    conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote(conn, database)} TO {annotator}"))
    for schema in (RAW, OPS, *DBT_SCHEMAS):
        s = _quote(conn, schema)
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {annotator}"))
        conn.execute(text(f"REVOKE ALL ON SCHEMA {s} FROM {annotator}"))
    conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {annotator}"))
    schema = _quote(conn, ANNOTATION)
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {annotator}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {annotator}"))
    present = set(
        conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                "UNION SELECT table_name FROM information_schema.views WHERE table_schema = :s"
            ),
            {"s": ANNOTATION},
        ).scalars()
    )
    for name in (n for n in ANNOTATOR_READS if n in present):  # absent before migration 0003
        conn.execute(text(f"GRANT SELECT ON {schema}.{_quote(conn, name)} TO {annotator}"))
    if ANNOTATOR_APPENDS in present:
        table = f"{schema}.{_quote(conn, ANNOTATOR_APPENDS)}"
        conn.execute(text(f"GRANT INSERT ON {table} TO {annotator}"))
        conn.execute(
            text(
                f"GRANT USAGE ON SEQUENCE {schema}.{_quote(conn, ANNOTATOR_APPENDS + '_label_id_seq')} "
                f"TO {annotator}"
            )
        )
