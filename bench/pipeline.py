"""Pipeline throughput: synthetic reports through fetch → rules extract → validate → load → dbt.

Usage: python bench/pipeline.py [--sizes 10000 100000] [--workers 2] [--batch-size 1000]
                                [--keep-results] [--no-dbt]

Each size gets a fresh throwaway database on the server of RRIEF_BENCH_DATABASE_URL (default:
the local test server), dropped afterwards. Extraction batches run in ``--workers`` processes,
as the DAG's mapped tasks would. Prints reports/s per stage and end to end, and the time per
report at each size relative to the smallest (1.0 = linear growth). ``--keep-results`` keeps
every batch's Great Expectations results (as the DAG does with ``RRIEF_GX_DIR``) in a temporary
directory, to measure what keeping them costs.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extractors.demo.reports import generate_reports
from extractors.demo.ris import RIS_TABLE, ris_url, seed_ris
from extractors.pipeline.batches import BatchDescriptor, plan_batches
from extractors.pipeline.context import RunContext
from extractors.pipeline.dbt import run_dbt
from extractors.pipeline.extract import BatchSummary, extract_batch
from extractors.pipeline.fetch import fetch_window
from extractors.privacy import DEMO_PSEUDONYM_KEY
from extractors.ris.sql import SqlConnector
from extractors.settings import get_settings
from extractors.warehouse.migrate import upgrade
from extractors.warehouse.roles import ensure_roles

SETTINGS = get_settings()

ADMIN_URL = os.environ.get(
    "RRIEF_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
START = date(2025, 3, 3)
PER_DAY = 5000


def _worker(args: tuple[str, dict, int, str | None]) -> dict:
    url, descriptor, index, results_dir = args
    engine = create_engine(url)
    try:
        ctx = RunContext(run_id="bench", task_id="extract", map_index=index)
        keep = Path(results_dir) if results_dir else None
        return extract_batch(descriptor, get_settings(), engine, ctx, results_dir=keep).model_dump()
    finally:
        engine.dispose()


def bench(
    n: int, workers: int, batch_size: int, tmp: Path, keep: bool = False, dbt: bool = True
) -> dict[str, float]:
    days = max(1, n // PER_DAY)
    reports = list(generate_reports(START, days=days, per_day=n // days, seed=n))
    seed_ris(tmp / f"ris-{n}.sqlite", reports)
    name = f"rrief_bench_{secrets.token_hex(4)}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        upgrade(engine)
        ensure_roles(engine)
        connector = SqlConnector(ris_url(tmp / f"ris-{n}.sqlite"), table_name=RIS_TABLE)
        t = {"n": float(len(reports))}
        t0 = time.perf_counter()
        begin = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
        for d in range(days + 1):
            fetch_window(
                connector,
                begin + timedelta(days=d),
                begin + timedelta(days=d + 1),
                DEMO_PSEUDONYM_KEY,
                engine,
            )
        t["fetch"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        batches: list[BatchDescriptor] = []
        for d in range(days + 1):
            lo = begin + timedelta(days=d)
            batches += plan_batches(engine, lo, lo + timedelta(days=1), batch_size)
        results_dir = str(tmp / f"gx-{n}") if keep else None
        jobs = [(url, b.to_xcom(), i, results_dir) for i, b in enumerate(batches)]
        with ProcessPoolExecutor(workers) as pool:
            summaries = [BatchSummary.model_validate(s) for s in pool.map(_worker, jobs)]
        t["extract+validate+load"] = time.perf_counter() - t1
        for stage in ("extract", "validate", "load"):  # CPU seconds summed over workers
            t[f"  {stage} (worker s)"] = sum(s.seconds.get(stage, 0.0) for s in summaries)
        if dbt:
            t2 = time.perf_counter()
            run_dbt(("build",), url=url, settings=SETTINGS, target_path=tmp / f"dbt-{n}")
            t["dbt build"] = time.perf_counter() - t2
        t["end to end"] = time.perf_counter() - t0
        assert sum(s.n_in for s in summaries) == len(reports)
        return t
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--keep-results", action="store_true", help="keep the GX results (RRIEF_GX_DIR)"
    )
    parser.add_argument("--no-dbt", action="store_true", help="stop after the load")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results[n] = bench(
                n, args.workers, args.batch_size, Path(tmp), args.keep_results, not args.no_dbt
            )
            r = results[n]
            kept = ", GX results kept" if args.keep_results else ""
            print(
                f"\n{int(r['n'])} reports ({args.workers} workers, batches of "
                f"{args.batch_size}{kept}):"
            )
            for stage, seconds in r.items():
                if stage == "n":
                    continue
                rate = r["n"] / seconds if seconds else float("inf")
                print(f"  {stage:<26} {seconds:8.1f} s  {rate:9.0f} reports/s")
    if len(results) > 1:
        base_n = min(results)
        base = results[base_n]
        print(f"\ntime per report relative to {base_n} reports (1.00 = linear growth):")
        for stage in base:
            if stage == "n" or not base[stage]:
                continue
            ratios = "  ".join(
                f"{n}: {r[stage] / r['n'] / (base[stage] / base['n']):.2f}x"
                for n, r in sorted(results.items())
            )
            print(f"  {stage:<26} {ratios}")


if __name__ == "__main__":
    main()
