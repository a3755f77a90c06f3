"""The daily dbt build on a large warehouse: does it cost O(day) or O(warehouse)?

Usage: python bench/dbt_incremental.py [--sizes 100000 1000000] [--daily 3000]
                                       [--project dbt] [--full-refresh-each-day]

For each size, a fresh throwaway database on the server of RRIEF_BENCH_DATABASE_URL (default:
the local test server) gets ``size`` reports with one valid extraction each, made in SQL from
the labels the rules extractor gives a few hundred demo reports (raw rows only, as the pipeline
loads them, dated 10 days back). dbt builds the project once (the warehouse as it stands), then
a day of ``--daily`` new reports and extractions arrives, and the daily ``dbt build`` is timed
(models and all their data tests). ``--project`` points at another dbt project (an older
checkout's, to time the full-rebuild models), ``--full-refresh-each-day`` times the daily build
with ``--full-refresh``. Prints seconds per size and the ratio to the smallest size (the target:
the largest within 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text

from extractors.demo.reports import generate_reports
from extractors.demo.ris import RIS_TABLE, ris_url, seed_ris
from extractors.pipeline.batches import plan_batches
from extractors.pipeline.context import RunContext
from extractors.pipeline.dbt import run_dbt
from extractors.pipeline.extract import extract_batch
from extractors.pipeline.fetch import fetch_window
from extractors.privacy import DEMO_PSEUDONYM_KEY
from extractors.ris.sql import SqlConnector
from extractors.settings import get_settings
from extractors.warehouse.migrate import upgrade
from extractors.warehouse.roles import ensure_roles

ADMIN_URL = os.environ.get(
    "RRIEF_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SETTINGS = get_settings()
START = date(2025, 1, 6)
TEMPLATES = 300  # demo reports whose rules labels every synthetic row copies


def _templates(engine: Engine, tmp: Path) -> None:
    """A few hundred real rows: demo reports fetched and extracted by the pipeline steps."""
    reports = list(generate_reports(START, days=1, per_day=TEMPLATES, seed=3))
    seed_ris(tmp / "ris.sqlite", reports)
    begin = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    for d in range(2):
        lo = begin + timedelta(days=d)
        fetch_window(
            SqlConnector(ris_url(tmp / "ris.sqlite"), table_name=RIS_TABLE),
            lo,
            lo + timedelta(days=1),
            DEMO_PSEUDONYM_KEY,
            engine,
        )
        for i, b in enumerate(plan_batches(engine, lo, lo + timedelta(days=1), 500)):
            extract_batch(b, SETTINGS, engine, RunContext(run_id="bench", task_id="x", map_index=i))


# Copies of the template rows under new keys: n reports, one ok extraction each, the changed
# timestamps set to `at` (old rows 10 days back, the new day's rows now).
_COPY = """
WITH t AS (
    SELECT r.*, e.schema_name, e.schema_version, e.backend, e.extractor_version, e.labels,
           row_number() OVER (ORDER BY r.report_key) - 1 AS i, count(*) OVER () AS n_t
    FROM raw.reports r JOIN raw.extractions e
      ON e.report_key = r.report_key AND e.status = 'ok' AND e.schema_name = r.report_type
    WHERE r.report_key NOT LIKE 'bench-%'
),
s AS (
    SELECT g, t.* FROM generate_series(:first, :first + :n - 1) g
    JOIN t ON t.i = g % t.n_t
),
ins AS (
    INSERT INTO raw.reports (report_key, patient_key, accession_key, source, modality,
        report_type, exam_at, report_final_at, report_text, content_sha256, ingested_at,
        updated_at, result_status, provenance)
    SELECT 'bench-' || g, 'bench-p' || (g / 3), 'bench-a' || g, source, modality, report_type,
        :at - interval '1 hour', :at, report_text, content_sha256, :at, :at, result_status,
        provenance
    FROM s
    RETURNING report_key
)
INSERT INTO raw.extractions (report_key, schema_name, schema_version, backend,
    extractor_version, status, labels, content_sha256, run_id, extracted_at)
SELECT 'bench-' || g, schema_name, schema_version, backend, extractor_version, 'ok', labels,
    content_sha256, 'bench', :at
FROM s
"""


def _copy(engine: Engine, first: int, n: int, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(text(_COPY), {"first": first, "n": n, "at": at})
        conn.execute(text("ANALYZE raw.reports; ANALYZE raw.extractions"))


def _print_slowest(path: Path, n: int = 8) -> None:
    """The nodes of a dbt run that took longest (where a daily build's time goes)."""
    results = json.loads(path.read_text(encoding="utf-8"))["results"]
    total = sum(r["execution_time"] for r in results)
    print(f"  {len(results)} nodes, {total:.1f} s summed over threads; slowest:", file=sys.stderr)
    for r in sorted(results, key=lambda r: -r["execution_time"])[:n]:
        print(f"    {r['execution_time']:6.2f} s  {r['unique_id']}", file=sys.stderr)


def bench(size: int, daily: int, project: Path, tmp: Path, full_refresh: bool) -> dict[str, float]:
    name = f"rrief_bench_{secrets.token_hex(4)}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    settings = SETTINGS.model_copy(update={"dbt_project_dir": str(project)})
    out: dict[str, float] = {}
    try:
        upgrade(engine)
        ensure_roles(engine, researcher_role=SETTINGS.researcher_role)
        _templates(engine, tmp)
        t0 = time.perf_counter()
        _copy(engine, 0, size, datetime.now(UTC) - timedelta(days=10))
        out["fill (s)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_dbt(("build",), url=url, settings=settings, target_path=tmp / f"first-{size}")
        out["first build (s)"] = time.perf_counter() - t0
        _copy(engine, size, daily, datetime.now(UTC))
        args = ("build", "--full-refresh") if full_refresh else ("build",)
        t0 = time.perf_counter()
        run_dbt(args, url=url, settings=settings, target_path=tmp / f"daily-{size}")
        out["daily build (s)"] = time.perf_counter() - t0
        _print_slowest(tmp / f"daily-{size}" / "run_results.json")
        with engine.connect() as conn:
            out["mart rows"] = float(
                sum(
                    conn.execute(text(f"SELECT count(*) FROM marts.{m}")).scalar_one()
                    for m in ("cxr_findings", "mammo_exams", "ccta_exams")
                )
            )
        return out
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--daily", type=int, default=3000, help="new reports in the timed day")
    parser.add_argument("--project", type=Path, default=Path(__file__).parents[1] / "dbt")
    parser.add_argument("--full-refresh-each-day", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for size in args.sizes:
            print(
                f"size {size:,}: filling, first build, then a day of {args.daily:,} ...",
                file=sys.stderr,
                flush=True,
            )
            results[size] = bench(
                size, args.daily, args.project.resolve(), Path(d), args.full_refresh_each_day
            )
            print(f"  {results[size]}", file=sys.stderr, flush=True)
    base = results[args.sizes[0]]["daily build (s)"]
    print(f"{'extractions':>12} {'first build s':>14} {'daily build s':>14} {'ratio':>6}")
    for size, r in results.items():
        print(
            f"{size:>12,} {r['first build (s)']:>14.1f} {r['daily build (s)']:>14.1f} "
            f"{r['daily build (s)'] / base:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
