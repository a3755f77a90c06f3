"""Great Expectations validation of extraction results, with suites built from the schema.

``validate_results(schema, items)`` returns one :class:`RowVerdict` per item: passed, or the
expectations it failed and why (the rows the pipeline sends to quarantine);
``validate_batch(..., keep=ValidationRun(...))`` also keeps each suite's result on disk.
"""

from extractors.validate.frames import ValidationItem
from extractors.validate.policy import ValidationPolicy
from extractors.validate.runner import (
    BatchValidation,
    FailedExpectation,
    RowVerdict,
    validate_batch,
    validate_results,
)
from extractors.validate.store import StoredResult, ValidationRun
from extractors.validate.suites import finding_paths, label_paths

__all__ = [
    "BatchValidation",
    "FailedExpectation",
    "RowVerdict",
    "StoredResult",
    "ValidationItem",
    "ValidationPolicy",
    "ValidationRun",
    "finding_paths",
    "label_paths",
    "validate_batch",
    "validate_results",
]
