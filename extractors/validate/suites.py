"""Expectation suites derived from a :class:`SchemaSpec` — nothing here is written per schema.

Three tables are validated (see :mod:`extractors.validate.frames`): ``labels`` (one row per
label path, long format), ``evidence`` (one row per evidence span) and ``prevalence`` (one row
per report, a 0/1 column per finding). Each expectation carries ``meta["check"]``, the short
name the runner turns into a readable reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from extractors.schemas import SchemaSpec
from extractors.schemas.model import FieldSpec
from extractors.validate.policy import ValidationPolicy

# Enum values that say a finding is absent or unknown; every other value of a finding field
# (positive, present, suspicious, focal...) counts as positive for the prevalence check.
NOT_POSITIVE = frozenset({"negative", "absent", "not_mentioned", "uncertain"})

PYTHON_TYPE = {
    "enum": "str",
    "enum_list": "str",
    "string": "str",
    "integer": "int",
    "boolean": "bool",
}


@dataclass(frozen=True)
class LabelPath:
    """One leaf of a labels object: ``field`` or ``field.key`` for per-key fields."""

    path: str
    field: FieldSpec
    key: str | None


@dataclass(frozen=True)
class FindingPath:
    """A label path whose batch prevalence is checked, with the values that count as positive."""

    path: str
    field_name: str
    positive_values: frozenset[str]
    column: str


def label_paths(schema: SchemaSpec) -> list[LabelPath]:
    """Every label path of the schema, in schema order (the evidence map uses the same keys)."""
    out: list[LabelPath] = []
    for f in schema.fields:
        keys = schema.keys_for(f)
        if keys:
            out.extend(LabelPath(f"{f.name}.{k}", f, k) for k in keys)
        else:
            out.append(LabelPath(f.name, f, None))
    return out


def finding_paths(schema: SchemaSpec) -> list[FindingPath]:
    """Paths of *finding* fields: single-valued enums that can be both denied and unmentioned.

    That shape (e.g. positive/negative/uncertain/not_mentioned, present/absent/not_mentioned)
    marks an observation; grades and categories (stenosis, BI-RADS) are not prevalence-checked.
    """
    out: list[FindingPath] = []
    for lp in label_paths(schema):
        allowed = schema.allowed_values(lp.field) or []
        if lp.field.kind != "enum" or "not_mentioned" not in allowed:
            continue
        if not ({"negative", "absent"} & set(allowed)):
            continue
        positive = frozenset(v for v in allowed if v not in NOT_POSITIVE)
        # the column name is what Data Docs show: the share of reports with a positive value
        out.append(FindingPath(lp.path, lp.field.name, positive, f"positive {lp.path}"))
    return out


def _meta(check: str, **extra: str) -> dict[str, str]:
    return {"check": check, **extra}


def labels_suite(schema: SchemaSpec) -> gx.ExpectationSuite:
    """Row checks of the labels table: known paths, required paths present, enums, types, nulls."""
    paths = label_paths(schema)
    enum_pairs: list[str] = []
    type_pairs: list[str] = []
    for lp in paths:
        allowed = schema.allowed_values(lp.field)
        if allowed is not None:
            enum_pairs.extend(f"{lp.path}={v}" for v in allowed)
        type_pairs.append(f"{lp.path}:{PYTHON_TYPE[lp.field.kind]}")
    # per-key field names are known too: a non-object value is then reported by value_type
    known = [lp.path for lp in paths] + [f.name for f in schema.fields if f.per]
    expectations: list[gxe.Expectation] = []
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(column="path", value_set=known, meta=_meta("label_known"))
    )
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(column="present", value_set=[1], meta=_meta("required"))
    )
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="path_value", value_set=enum_pairs, meta=_meta("value_in_enum")
        )
    )
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="path_type", value_set=type_pairs, meta=_meta("value_type")
        )
    )
    expectations.append(
        gxe.ExpectColumnValuesToNotBeNull(
            column="value",
            row_condition=(Column("nullable") == 0) & (Column("present") == 1),
            meta=_meta("not_null"),
        )
    )
    return gx.ExpectationSuite(name=f"{schema.id}.labels", expectations=expectations)


def evidence_suite(schema: SchemaSpec) -> gx.ExpectationSuite:
    """Span checks: evidence names a label path and points inside the text at the quoted words."""
    expectations: list[gxe.Expectation] = []
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="path",
            value_set=[lp.path for lp in label_paths(schema)],
            meta=_meta("evidence_label_known"),
        )
    )
    expectations.append(
        gxe.ExpectColumnValuesToBeBetween(column="start", min_value=0, meta=_meta("evidence_start"))
    )
    expectations.append(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="end", column_B="start", or_equal=False, meta=_meta("evidence_nonempty")
        )
    )
    expectations.append(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="text_len", column_B="end", or_equal=True, meta=_meta("evidence_inside_text")
        )
    )
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="span_matches", value_set=[1], meta=_meta("evidence_text_matches")
        )
    )
    return gx.ExpectationSuite(name=f"{schema.id}.evidence", expectations=expectations)


def prevalence_suite(schema: SchemaSpec, policy: ValidationPolicy) -> gx.ExpectationSuite:
    """Batch checks: the share of reports positive for each finding stays under the limit."""
    expectations: list[gxe.Expectation] = []
    for fp in finding_paths(schema):
        expectations.append(
            gxe.ExpectColumnMeanToBeBetween(
                column=fp.column,
                max_value=policy.limit_for(fp.field_name),
                meta=_meta("prevalence", path=fp.path),
            )
        )
    return gx.ExpectationSuite(name=f"{schema.id}.prevalence", expectations=expectations)
