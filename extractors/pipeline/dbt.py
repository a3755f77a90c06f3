"""Step 4: run dbt (its own venv) against the warehouse, with the schema-derived column lists.

The label columns of the marts come from the schema files (:func:`dbt_vars`), passed with
``--vars``; ``dbt/dbt_project.yml`` holds the same values as defaults for people running dbt by
hand, and a test keeps the two equal. Run ``python -m extractors.pipeline.dbt`` to print them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from sqlalchemy import make_url

from extractors.schemas import SchemaSpec, get_schema
from extractors.settings import Settings
from extractors.validate.suites import label_paths

log = logging.getLogger("rrief.pipeline")

MART_SCHEMAS = ("cxr", "mammo", "ccta")
OUTPUT_TAIL_CHARS = 4000


class DbtError(RuntimeError):
    """dbt exited non-zero; the message carries the end of its output (never report text:
    marts and tests hold none)."""


class DbtRunResult(BaseModel):
    """A finished dbt command: its arguments, exit code and the end of its output."""

    args: list[str]
    returncode: int
    output_tail: str


def column_name(path: str) -> str:
    """Snake-case column of a label path: ``Pleural Effusion`` → ``pleural_effusion``,
    ``stenosis.LAD`` → ``stenosis_lad``."""
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")


def schema_vars(schema: SchemaSpec) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """(label columns, list columns) of one schema, as dbt vars."""
    columns: list[dict[str, Any]] = []
    lists: dict[str, list[str]] = {}
    for lp in label_paths(schema):
        if lp.field.kind == "enum_list":
            lists[lp.field.name] = list(schema.allowed_values(lp.field) or [])
            continue
        path = [lp.field.name] if lp.key is None else [lp.field.name, lp.key]
        columns.append({"path": path, "column": column_name(lp.path)})
    return columns, lists


def dbt_vars(schema_names: Sequence[str] = MART_SCHEMAS) -> dict[str, Any]:
    """``rrief_label_columns`` and ``rrief_list_columns`` for the marts, from the built-in schemas."""
    label_columns: dict[str, Any] = {}
    list_columns: dict[str, Any] = {}
    for name in schema_names:
        label_columns[name], list_columns[name] = schema_vars(get_schema(name))
    return {"rrief_label_columns": label_columns, "rrief_list_columns": list_columns}


def dbt_env(url: str) -> dict[str, str]:
    """Environment for dbt's profiles.yml from a SQLAlchemy URL (a socket dir works as host)."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "127.0.0.1"
    if isinstance(host, tuple):
        host = host[0]
    return {
        "RRIEF_DBT_HOST": str(host),
        "RRIEF_DBT_PORT": str(parsed.port or 5432),
        "RRIEF_DBT_USER": parsed.username or os.environ.get("USER", "postgres"),
        "RRIEF_DBT_PASSWORD": parsed.password or "",
        "RRIEF_DBT_DBNAME": parsed.database or "",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }


def run_dbt(
    args: Sequence[str] = ("build",),
    *,
    url: str,
    settings: Settings,
    target_path: Path | str | None = None,
    extra_vars: dict[str, Any] | None = None,
    timeout_s: float = 1800,
) -> DbtRunResult:
    """Run ``dbt ARGS`` on the warehouse at ``url``; raise :class:`DbtError` on failure.

    ``target_path`` (default ``RRIEF_DBT_TARGET_PATH``, else ``dbt/target``) keeps concurrent
    runs (tests, the demo) from sharing dbt's ``target/``.
    """
    project = Path(settings.dbt_project_dir)
    if not project.is_absolute() and not project.exists():
        project = Path(__file__).resolve().parents[2] / settings.dbt_project_dir
    project = project.resolve()
    dbt_bin = Path(settings.dbt_bin)
    if not dbt_bin.is_absolute() and not dbt_bin.exists():
        # relative to the repository root when not found from the working directory
        dbt_bin = Path(__file__).resolve().parents[2] / settings.dbt_bin
    dbt_bin = dbt_bin.absolute()  # dbt runs with the project as working directory
    if not dbt_bin.exists():
        raise DbtError(
            f"dbt not found at {dbt_bin} (RRIEF_DBT_BIN); create its venv: python3 -m venv "
            ".venv-dbt && .venv-dbt/bin/pip install 'dbt-core>=1.11,<1.12' 'dbt-postgres>=1.11,<1.12'"
        )
    variables = {**dbt_vars(), **(extra_vars or {})}
    target_path = target_path or settings.dbt_target_path or None
    target = Path(target_path).resolve() if target_path else project / "target"
    cmd = [
        str(dbt_bin),
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(target),
        "--vars",
        json.dumps(variables),
    ]
    env = {**os.environ, **dbt_env(url), "DBT_LOG_PATH": str(target / "logs")}
    log.info("running dbt %s", " ".join(args))
    proc = subprocess.run(
        cmd,
        env=env,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    result = DbtRunResult(
        args=list(args), returncode=proc.returncode, output_tail=proc.stdout[-OUTPUT_TAIL_CHARS:]
    )
    if proc.returncode != 0:
        raise DbtError(
            f"dbt {' '.join(args)} failed (exit {proc.returncode}):\n{result.output_tail}"
        )
    return result


if __name__ == "__main__":  # print the vars block for dbt/dbt_project.yml
    yaml.safe_dump(dbt_vars(), sys.stdout, sort_keys=False, default_flow_style=None, width=100)
