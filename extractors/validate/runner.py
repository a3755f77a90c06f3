"""Run the schema's suites with an ephemeral Great Expectations context; verdicts per row.

The context, data assets and suites are built once per process and reused, so validating a
batch costs a few tens of milliseconds (no network: analytics are switched off). With a
:class:`~extractors.validate.store.ValidationRun` every suite's result is also kept on disk
(:mod:`extractors.validate.store`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from pydantic import BaseModel, ConfigDict

from extractors.schemas import SchemaSpec
from extractors.validate.frames import (
    CONTAINER_MARK,
    ValidationItem,
    evidence_frame,
    label_value,
    labels_frame,
    prevalence_frame,
)
from extractors.validate.policy import ValidationPolicy
from extractors.validate.store import StoredResult, ValidationRun, store_result
from extractors.validate.suites import (
    evidence_suite,
    finding_paths,
    labels_suite,
    prevalence_suite,
)

log = logging.getLogger("rrief.validate")

# index columns returned with each unexpected row, per table: enough to explain the failure
INDEX_COLUMNS = {
    "labels": ["row", "path", "value", "path_type"],
    "evidence": ["row", "path", "start", "end", "text_len"],
}

_LOCK = threading.Lock()


class ValidationRunError(RuntimeError):
    """An expectation could not be evaluated (a bug, not bad data): never treated as a pass."""


class FailedExpectation(BaseModel):
    """One failed expectation for one report: what was checked, where, and why it failed."""

    model_config = ConfigDict(frozen=True)

    expectation: str
    check: str
    path: str | None
    reason: str


class RowVerdict(BaseModel):
    """The outcome for one validated item, in input order."""

    report_id: str
    passed: bool
    failures: list[FailedExpectation]


class BatchValidation(BaseModel):
    """The verdicts of a batch, and where its suite results were kept (empty: not kept)."""

    verdicts: list[RowVerdict]
    stored: list[StoredResult] = []


@lru_cache(maxsize=1)
def _context() -> Any:
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    ctx = gx.get_context(mode="ephemeral", project_config=config)
    source = ctx.data_sources.add_pandas("rrief")
    for table in ("labels", "evidence", "prevalence"):
        source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("batch")
    return ctx


def _batch_definition(table: str) -> Any:
    return _context().data_sources.get("rrief").get_asset(table).get_batch_definition("batch")


@lru_cache(maxsize=64)
def _suite(schema_json: str, table: str, policy_json: str) -> gx.ExpectationSuite:
    context = _context()  # suites bind to the active context, so it must exist first
    schema = SchemaSpec.model_validate_json(schema_json)
    policy = ValidationPolicy.model_validate_json(policy_json or "{}")
    if table == "labels":
        suite = labels_suite(schema)
    elif table == "evidence":
        suite = evidence_suite(schema)
    else:
        suite = prevalence_suite(schema, policy)
    # one suite per distinct schema content and policy (site schemas may reuse an id)
    suite.name = (
        f"{suite.name}.{hashlib.sha256((schema_json + policy_json).encode()).hexdigest()[:12]}"
    )
    return context.suites.add(suite)


def _run(
    schema: SchemaSpec, table: str, frame: pd.DataFrame, policy: ValidationPolicy
) -> ExpectationSuiteValidationResult:
    """Validate ``frame`` with the table's suite; the full result only when something failed.

    A first pass asks only pass/fail (``BOOLEAN_ONLY``, about half the cost); when every
    expectation passed that is the answer, otherwise the suite runs again with ``COMPLETE``
    results, whose unexpected rows name the failing reports. Either way the outcome is that
    of the ``COMPLETE`` run: the success of an expectation does not depend on the format.
    """
    policy_json = policy.model_dump_json() if table == "prevalence" else ""
    suite = _suite(schema.model_dump_json(), table, policy_json)
    batch = _batch_definition(table).get_batch(batch_parameters={"dataframe": frame})
    quick = batch.validate(suite, result_format={"result_format": "BOOLEAN_ONLY"})
    if quick.success:
        return quick
    result_format: dict[str, Any] = {"result_format": "COMPLETE"}
    if table in INDEX_COLUMNS:
        result_format["unexpected_index_column_names"] = INDEX_COLUMNS[table]
    return batch.validate(suite, result_format=result_format)


def _check_ran(r: ExpectationValidationResult) -> None:
    info = r.exception_info or {}
    raised = info.get("raised_exception") if isinstance(info, dict) else False
    if not raised and isinstance(info, dict):
        raised = any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())
    if raised:
        raise ValidationRunError(
            f"expectation {r.expectation_config.type} could not run: {info}"  # type: ignore[union-attr]
        )


def _reason(schema: SchemaSpec, check: str, row: dict[str, Any]) -> str:
    path = row.get("path")
    if check == "label_known":
        return f"label {path!r} is not a field of schema {schema.id}"
    if check == "required":
        return f"required label {path!r} is missing"
    if check == "value_in_enum":
        field_name = str(path).split(".")[0] if str(path) not in schema.field_names else str(path)
        allowed = schema.allowed_values(schema.field(field_name)) or []
        return f"{path}={row.get('value')!r} is not one of the allowed values {allowed}"
    if check == "value_type":
        got = str(row.get("path_type", "")).split(":", 1)[-1]
        if got.endswith(CONTAINER_MARK):
            return f"{path} holds a {got.removesuffix(CONTAINER_MARK)}, not the object/list the schema declares"
        return f"{path} holds a {got} value, which the schema does not allow there"
    if check == "not_null":
        return f"{path} is null but the schema requires a value"
    if check == "evidence_label_known":
        return f"evidence is keyed by {path!r}, which is not a label path of {schema.id}"
    if check == "evidence_start":
        return f"evidence for {path} starts at {row.get('start')} (missing or negative offset)"
    if check == "evidence_nonempty":
        return f"evidence for {path} has end {row.get('end')} <= start {row.get('start')}"
    if check == "evidence_inside_text":
        return (
            f"evidence for {path} ends at {row.get('end')}, past the end of the "
            f"{row.get('text_len')}-character report"
        )
    if check == "evidence_text_matches":
        return f"evidence text for {path} is not the report text at its offsets"
    return f"{check} failed for {path}"


def _row_failures(
    schema: SchemaSpec, result: ExpectationSuiteValidationResult
) -> dict[int, list[FailedExpectation]]:
    out: dict[int, list[FailedExpectation]] = {}
    for r in result.results:
        _check_ran(r)
        if r.success:
            continue
        config = r.expectation_config
        assert config is not None
        check = str((config.meta or {}).get("check", config.type))
        for row in r.result.get("unexpected_index_list") or []:
            failure = FailedExpectation(
                expectation=config.type,
                check=check,
                path=None if row.get("path") is None else str(row["path"]),
                reason=_reason(schema, check, row),
            )
            out.setdefault(int(row["row"]), []).append(failure)
    return out


def _prevalence_failures(
    schema: SchemaSpec,
    items: Sequence[ValidationItem],
    result: ExpectationSuiteValidationResult,
    policy: ValidationPolicy,
) -> dict[int, list[FailedExpectation]]:
    by_path = {fp.path: fp for fp in finding_paths(schema)}
    out: dict[int, list[FailedExpectation]] = {}
    for r in result.results:
        _check_ran(r)
        if r.success:
            continue
        config = r.expectation_config
        assert config is not None
        fp = by_path[str(config.meta["path"])]
        rate = float(r.result["observed_value"])
        limit = policy.limit_for(fp.field_name)
        for i, item in enumerate(items):
            value = label_value(item.labels, fp.path)
            if value in fp.positive_values:
                out.setdefault(i, []).append(
                    FailedExpectation(
                        expectation=config.type,
                        check="prevalence",
                        path=fp.path,
                        reason=(
                            f"{fp.path}={value!r} in {rate:.0%} of the {len(items)} reports of "
                            f"this batch, above the {limit:.0%} prevalence sanity limit"
                        ),
                    )
                )
    return out


def validate_results(
    schema: SchemaSpec,
    items: Sequence[ValidationItem],
    policy: ValidationPolicy | None = None,
) -> list[RowVerdict]:
    """Validate a batch of extractions of one schema; one verdict per item, in input order.

    Row checks (enums, required labels, types, evidence offsets) judge each item alone; the
    prevalence check judges the batch and, when it fails, fails the items carrying the
    suspicious positive value. Batches smaller than ``policy.min_reports`` skip prevalence.
    """
    return validate_batch(schema, items, policy).verdicts


def validate_batch(
    schema: SchemaSpec,
    items: Sequence[ValidationItem],
    policy: ValidationPolicy | None = None,
    keep: ValidationRun | None = None,
) -> BatchValidation:
    """:func:`validate_results`, and with ``keep`` each suite's result stored for Data Docs."""
    policy = policy or ValidationPolicy()
    failures: dict[int, list[FailedExpectation]] = {}
    stored: list[StoredResult] = []

    def merge(new: dict[int, list[FailedExpectation]]) -> None:
        for i, fs in new.items():
            failures.setdefault(i, []).extend(fs)

    def run(table: str, frame: pd.DataFrame) -> ExpectationSuiteValidationResult:
        result = _run(schema, table, frame, policy)
        if keep is not None:
            stored.append(store_result(keep, table, result, len(frame)))
        return result

    with _LOCK:
        if items:
            merge(_row_failures(schema, run("labels", labels_frame(schema, items))))
            evidence = evidence_frame(items)
            if len(evidence):
                merge(_row_failures(schema, run("evidence", evidence)))
            if len(items) >= policy.min_reports and finding_paths(schema):
                prevalence = run("prevalence", prevalence_frame(schema, items))
                merge(_prevalence_failures(schema, items, prevalence, policy))
    verdicts = [
        RowVerdict(report_id=it.report_id, passed=not failures.get(i), failures=failures.get(i, []))
        for i, it in enumerate(items)
    ]
    n_failed = sum(not v.passed for v in verdicts)
    if n_failed:
        log.info("validation of %d %s extractions: %d failed", len(items), schema.id, n_failed)
    return BatchValidation(verdicts=verdicts, stored=stored)
