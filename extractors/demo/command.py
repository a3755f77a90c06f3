"""``rrief demo``: the whole daily pipeline on a synthetic RIS, no Docker, GPU or model weights."""

from __future__ import annotations

import time
from pathlib import Path

import click

DEMO_KEY_BANNER = (
    "DEMO PSEUDONYMIZATION KEY IN USE: pseudonyms are made with a PUBLIC key and protect\n"
    "nothing. Never run real patient data without your own secret RRIEF_PSEUDONYM_KEY."
)


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".rrief") / "demo",
    show_default=True,
    help="Where the demo RIS, the Airflow home and dbt's target go.",
)
@click.option("--days", type=click.IntRange(1, 60), default=5, show_default=True)
@click.option("--per-day", type=click.IntRange(1, 5000), default=80, show_default=True)
@click.option(
    "--dbt-every-run/--dbt-last-run",
    default=False,
    show_default=True,
    help="Run dbt build after every daily run (as production does) or only after the last.",
)
def demo(workdir: Path, days: int, per_day: int, dbt_every_run: bool) -> None:
    """Seed a demo RIS, run rrief_daily over its days, build the marts, show the cohorts.

    Uses RRIEF_WAREHOUSE_URL when set, else an embedded PostgreSQL in ./.rrief/pgdata.
    Safe to run twice: the second run changes nothing in the warehouse.
    """
    from extractors.demo.run import SAMPLE_QUERY, run_demo, sample_query
    from extractors.privacy import DEMO_PSEUDONYM_KEY, choose_key
    from extractors.settings import get_settings
    from extractors.warehouse.db import make_engine, redacted, resolve_url

    t0 = time.perf_counter()
    settings = get_settings()
    key = choose_key(settings.pseudonym_key, lambda: DEMO_PSEUDONYM_KEY)
    if key == DEMO_PSEUDONYM_KEY:
        click.secho(DEMO_KEY_BANNER, fg="yellow", bold=True, err=True)
    url = resolve_url(settings.warehouse_url)
    click.echo(f"warehouse: {redacted(url)}")
    result = run_demo(
        workdir,
        url,
        key,
        backend=settings.backend,
        days=days,
        per_day=per_day,
        dbt_on_last_only=not dbt_every_run,
        researcher_role=settings.researcher_role,
        echo=click.echo,
    )

    t = result.totals
    click.echo(
        f"\nreports in: {t['n_in']}  loaded: {t['n_loaded']}  quarantined: {t['n_quarantined']}"
        f"  errored: {t['n_errored']}"
    )
    click.echo(
        f"\nWhat a researcher sees (role `{settings.researcher_role}`, schema `marts` only):"
    )
    for name, size in result.mart_sizes.items():
        click.echo(f"  marts.{name:<26} {size:>5} studies")
    for name, size in result.cohort_sizes.items():
        click.echo(f"  marts.{name:<26} {size:>5} patients")
    engine = make_engine(url)
    try:
        rows = sample_query(engine, settings.researcher_role)
    finally:
        engine.dispose()
    click.echo("\nSample query:\n" + SAMPLE_QUERY)
    click.echo(f"  {'exam_day':<12}{'patients':>9}{'with_cardiomegaly':>19}")
    for day, patients, cm in rows:
        click.echo(f"  {day!s:<12}{patients:>9}{cm:>19}")
    click.echo(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
