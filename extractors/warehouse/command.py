"""``rrief warehouse``: migrate the research warehouse and apply its roles, or show its revision."""

from __future__ import annotations

import click


@click.group()
def warehouse() -> None:
    """Manage the research warehouse (RRIEF_WAREHOUSE_URL, else the embedded PostgreSQL)."""


@warehouse.command("upgrade")
@click.option("--url", default=None, help="SQLAlchemy URL (default: RRIEF_WAREHOUSE_URL).")
def upgrade_command(url: str | None) -> None:
    """Run the Alembic migrations to head, then create the roles and grants (idempotent).

    The researcher role (RRIEF_RESEARCHER_ROLE) ends up with SELECT on the marts schema only.
    """
    from sqlalchemy.exc import OperationalError

    from extractors.settings import get_settings
    from extractors.warehouse.db import make_engine, redacted, resolve_url
    from extractors.warehouse.migrate import upgrade
    from extractors.warehouse.roles import ensure_roles

    settings = get_settings()
    target = resolve_url(url or settings.warehouse_url)
    engine = make_engine(target)
    try:
        revision = upgrade(engine)
        ensure_roles(engine, researcher_role=settings.researcher_role)
    except OperationalError as exc:
        raise click.ClickException(
            f"cannot reach the warehouse at {redacted(target)}: {exc.orig}"
        ) from None
    finally:
        engine.dispose()
    click.echo(f"warehouse {redacted(target)} at revision {revision}; roles and grants applied")


@warehouse.command("status")
@click.option("--url", default=None, help="SQLAlchemy URL (default: RRIEF_WAREHOUSE_URL).")
def status_command(url: str | None) -> None:
    """Print the warehouse's migration revision and the newest one this code knows."""
    from sqlalchemy.exc import OperationalError

    from extractors.settings import get_settings
    from extractors.warehouse.db import redacted, resolve_url
    from extractors.warehouse.migrate import current_revision, head_revision

    target = resolve_url(url or get_settings().warehouse_url)
    try:
        current = current_revision(target)
    except OperationalError as exc:
        raise click.ClickException(
            f"cannot reach the warehouse at {redacted(target)}: {exc.orig}"
        ) from None
    head = head_revision()
    state = "up to date" if current == head else "needs `rrief warehouse upgrade`"
    click.echo(f"{redacted(target)}: revision {current or 'none'} (head {head}): {state}")
