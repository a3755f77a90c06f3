"""Keep every batch's Great Expectations validation results, and render them as GX Data Docs.

Results go to a GX ``ValidationResultsStore`` on the filesystem (``<root>/validations/``, the
layout GX itself uses: ``<suite parts>/<run name>/<run time>/<batch>.json``), so GX tools can read
them too. The pipeline indexes each stored result in ``ops.validation_results``; the health page
links there, and its Data Docs route renders a stored result with GX's own page renderer on
request (:func:`render_result_page`): nothing is rendered during a pipeline run.

Stored results hold label values, paths and row numbers of the validated tables, never report
text; string values longer than :data:`MAX_STORED_CHARS` (an invalid enum value can be any
string a model wrote) are cut before storing.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.store import ValidationResultsStore
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from pydantic import AwareDatetime, BaseModel, ConfigDict

MAX_STORED_CHARS = 60
RESULTS_DIR = "validations"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(value: str) -> str:
    """A file-name and URL safe form of a run id or batch label (``:``/``+``/spaces → ``_``)."""
    return _UNSAFE.sub("_", value).strip("_.") or "_"


class ValidationRun(BaseModel):
    """Where one batch's results go: the store root, the run (name and time) and the batch."""

    model_config = ConfigDict(frozen=True)

    root: Path
    run_name: str
    run_time: AwareDatetime
    batch: str


class StoredResult(BaseModel):
    """One stored suite result, as indexed in ``ops.validation_results``."""

    model_config = ConfigDict(frozen=True)

    suite_name: str
    table_name: str
    success: bool
    evaluated: int
    unsuccessful: int
    n_rows: int
    result_path: str  # relative to <root>/validations, without the .json suffix


@lru_cache(maxsize=8)
def _store(root: str) -> ValidationResultsStore:
    return ValidationResultsStore(
        store_backend={
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(Path(root) / RESULTS_DIR),
        }
    )


def result_key(run: ValidationRun, suite_name: str) -> ValidationResultIdentifier:
    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=safe_name(run.run_name), run_time=run.run_time),
        batch_identifier=safe_name(run.batch),
    )


def _bounded(value: Any) -> Any:
    """``value`` with every string longer than MAX_STORED_CHARS cut (lists/dicts walked)."""
    if isinstance(value, str) and len(value) > MAX_STORED_CHARS:
        return f"{value[:MAX_STORED_CHARS]}… ({len(value)} chars)"
    if isinstance(value, list):
        return [_bounded(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_bounded(v) for v in value)
    if isinstance(value, dict):
        return {k: _bounded(v) for k, v in value.items()}
    return value


def store_result(
    run: ValidationRun,
    table_name: str,
    result: ExpectationSuiteValidationResult,
    n_rows: int,
) -> StoredResult:
    """Write a copy of ``result`` to the store (a rerun of the same run and batch overwrites
    it); the caller's object is left as it was."""
    result = copy.deepcopy(result)
    for r in result.results:
        r.result = _bounded(r.result)
    result.meta = {
        **(result.meta or {}),
        "run_id": RunIdentifier(run_name=safe_name(run.run_name), run_time=run.run_time),
        "rrief": {"batch": run.batch, "table": table_name, "n_rows": n_rows},
    }
    key = result_key(run, result.suite_name)
    _store(str(run.root)).set(key, result)
    stats = result.statistics or {}
    return StoredResult(
        suite_name=result.suite_name,
        table_name=table_name,
        success=bool(result.success),
        evaluated=int(stats.get("evaluated_expectations") or len(result.results)),
        unsuccessful=int(stats.get("unsuccessful_expectations") or 0),
        n_rows=n_rows,
        result_path=PurePosixPath(*key.to_tuple()).as_posix(),
    )


def result_file(root: Path | str, result_path: str) -> Path:
    """The JSON file of a stored result; ``ValueError`` for a path leaving the store."""
    base = (Path(root) / RESULTS_DIR).resolve()
    path = (base / f"{result_path}.json").resolve()
    if base not in path.parents:
        raise ValueError(f"not a stored validation result: {result_path!r}")
    return path


def load_result(root: Path | str, result_path: str) -> ExpectationSuiteValidationResult:
    """A stored result, read back with GX's own schema; ``FileNotFoundError`` when absent."""
    path = result_file(root, result_path)
    if not path.is_file():
        raise FileNotFoundError(f"no stored validation result {result_path!r}")
    return _store(str(root)).deserialize(path.read_text(encoding="utf-8"))


def render_result_page(result: ExpectationSuiteValidationResult) -> str:
    """The GX Data Docs page of one validation result (GX's page renderer and view)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    content = ValidationResultsPageRenderer().render(result)
    return DefaultJinjaPageView().render(content, show_how_to_buttons=False)
