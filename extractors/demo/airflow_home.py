"""A local Airflow for ``dag.test()``: its own AIRFLOW_HOME with a SQLite metadata database.

Airflow reads its configuration when first imported, so :func:`configure_airflow` must run
before anything imports ``airflow``; it refuses to continue if Airflow was imported with a
different home (the settings would silently not apply).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("rrief.demo")

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"


def airflow_env(home: Path, dags_folder: Path = DAGS_FOLDER) -> dict[str, str]:
    """Environment variables of a quiet, local, SQLite-backed Airflow in ``home``."""
    home = home.resolve()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder.resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",  # no network at run time
    }


def configure_airflow(home: Path, dags_folder: Path = DAGS_FOLDER) -> float:
    """Point Airflow at ``home`` and create/upgrade its metadata DB; returns seconds taken."""
    env = airflow_env(home, dags_folder)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        raise RuntimeError(
            "Airflow was imported before configure_airflow(); its settings would not apply. "
            "Call configure_airflow first (or run in a fresh process)."
        )
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    t0 = time.perf_counter()
    from airflow.utils import db

    db.initdb()
    took = time.perf_counter() - t0
    log.info("Airflow metadata DB ready in %s (%.1f s)", env["AIRFLOW_HOME"], took)
    return took


def load_dag(dag_id: str = "rrief_daily", dags_folder: Path = DAGS_FOLDER):
    """The DAG from the DAG folder (import errors raise, with every file's error)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder), safe_mode=False)
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise RuntimeError(f"no DAG {dag_id!r} in {dags_folder}")
    return dag
