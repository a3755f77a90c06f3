"""``rrief ris check``: dry-run a RIS feed before the pipeline reads it.

The connector is built exactly as the pipeline builds it (``RRIEF_RIS_*`` settings, any option
given here overriding one), reads the window and nothing is written anywhere. Output: counts by
report type, status, time/id/text source and flag, errors by reason, exam codes the site mapping
does not cover, and the first records (locator, type, length, status). Report text is printed
only with ``--show-text`` and only to a terminal.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from tqdm import tqdm

from extractors.ris.check import CheckSummary, check_feed


class _When(click.ParamType):
    """An ISO date or timestamp; without an offset it is UTC (as the DAG's data intervals)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO date or timestamp (2025-02-10[T08:00[+01:00]])")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group()
def ris() -> None:
    """Connect a RIS: check a feed (HL7 v2 folder, FHIR server or Bundles, SQL) before use."""


@ris.command("check")
@click.option(
    "--kind",
    type=click.Choice(["hl7v2", "fhir", "sql"]),
    default=None,
    help="Connector (default: RRIEF_RIS_KIND).",
)
@click.option("--url", default=None, help="SQLAlchemy URL (sql) or FHIR base URL (fhir).")
@click.option("--folder", default=None, help="HL7 v2 drop folder or FHIR Bundle folder.")
@click.option("--table", default=None, help="sql: table or view (default: RRIEF_RIS_TABLE).")
@click.option("--query", default=None, help="sql: query with :start and :end.")
@click.option("--source", default=None, help="Source name (default: RRIEF_RIS_SOURCE).")
@click.option("--exam-map", default=None, help="Site exam mapping file (RRIEF_RIS_EXAM_MAP).")
@click.option(
    "--include-preliminary/--no-include-preliminary",
    default=None,
    help="Count preliminary reports as loadable (default: RRIEF_RIS_INCLUDE_PRELIMINARY).",
)
@click.option("--start", "start", type=_When(), required=True, help="Window start (inclusive).")
@click.option("--end", "end", type=_When(), default=None, help="Window end (default: +1 day).")
@click.option(
    "--show", default=5, show_default=True, type=click.IntRange(0), help="Records to list."
)
@click.option(
    "--show-text", is_flag=True, help="Also print the listed records' text (terminal only)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress on stderr."
)
def check(
    kind: str | None,
    url: str | None,
    folder: str | None,
    table: str | None,
    query: str | None,
    source: str | None,
    exam_map: str | None,
    include_preliminary: bool | None,
    start: datetime,
    end: datetime | None,
    show: int,
    show_text: bool,
    as_json: bool,
    progress: bool,
) -> None:
    """Read the RIS window [START, END) as the daily fetch would, write nothing, and report
    what would be loaded and what not (never report text, unless --show-text on a terminal).

    \b
    Examples:
      rrief ris check --kind hl7v2 --folder /data/ris-inbox --start 2025-02-10
      rrief ris check --kind fhir --url https://ris.example.org/fhir --start 2025-02-10 --json
    """
    from extractors.pipeline.config import connector_from_settings
    from extractors.settings import get_settings

    end = end or start + timedelta(days=1)
    if show_text and (as_json or not sys.stdout.isatty()):
        raise click.UsageError("--show-text prints report text only to a terminal, not to a pipe")
    overrides = {
        "ris_kind": kind,
        "ris_url": url,
        "ris_folder": folder,
        "ris_table": table,
        "ris_query": query,
        "ris_source": source,
        "ris_exam_map": exam_map,
        "ris_include_preliminary": include_preliminary,
    }
    settings = get_settings().model_copy(
        update={k: v for k, v in overrides.items() if v is not None}
    )
    try:
        connector = connector_from_settings(settings)
        items = tqdm(
            connector.fetch(start, end),
            desc="records",
            unit="record",
            file=sys.stderr,
            disable=not progress,
        )
        summary, texts = check_feed(
            connector, start, end, show=show, keep_text=show_text, items=items
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
        return
    _print(summary, settings.ris_kind, texts)


def _counts(title: str, counts: dict[str, int]) -> None:
    if counts:
        click.echo(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def _print(summary: CheckSummary, kind: str, texts: list[str]) -> None:
    click.echo(
        f"{kind} feed {summary.source!r}, window [{summary.start.isoformat()}, "
        f"{summary.end.isoformat()}) — dry run, nothing written"
    )
    click.echo(f"records: {summary.parsed} would be loaded, {summary.errors} errors")
    _counts("report type", summary.by_report_type)
    _counts("result status", summary.by_status)
    _counts("report time from", summary.by_time_source)
    _counts("accession from", summary.by_id_source)
    _counts("text from", summary.by_text_source)
    _counts("flags", summary.by_flag)
    if summary.error_reasons:
        click.echo("errors by reason:")
        for group in summary.error_reasons:
            click.echo(f"  {group.count:6d}  {group.reason}  (first: {group.first})")
    mapping = summary.mapping_file or "none (built-in patterns only)"
    click.echo(f"exam mapping file: {mapping}")
    _counts("ignored by the mapping", summary.ignored_by_mapping)
    if summary.unmapped_exams:
        click.echo("exams the mapping file does not name (add them to it):")
        click.echo(f"  {'count':>6}  {'code':<16} {'built-in outcome':<16} name")
        for line in summary.unmapped_exams:
            click.echo(f"  {line.count:6d}  {line.code:<16} {line.outcome:<16} {line.name}")
    if summary.records:
        click.echo(f"first {len(summary.records)} records:")
        click.echo(
            f"  {'type':<8} {'modality':<8} {'status':<11} {'chars':>6}  {'time':<7} locator"
        )
        for i, rec in enumerate(summary.records):
            flags = f"  [{', '.join(rec.flags)}]" if rec.flags else ""
            click.echo(
                f"  {rec.report_type or '-':<8} {rec.modality:<8} {rec.status:<11} "
                f"{rec.chars:6d}  {rec.time_source or '-':<7} {rec.locator}{flags}"
            )
            if i < len(texts):
                click.echo("    | " + texts[i].replace("\n", "\n    | "))
