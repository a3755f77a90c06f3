"""Great Expectations validation of extraction results, with suites built from the schema.

``validate_results(schema, items)`` returns one :class:`RowVerdict` per item: passed, or the
expectations it failed and why (the rows the pipeline sends to quarantine).
"""

from extractors.validate.frames import ValidationItem
from extractors.validate.policy import ValidationPolicy
from extractors.validate.runner import FailedExpectation, RowVerdict, validate_results
from extractors.validate.suites import finding_paths, label_paths

__all__ = [
    "FailedExpectation",
    "RowVerdict",
    "ValidationItem",
    "ValidationPolicy",
    "finding_paths",
    "label_paths",
    "validate_results",
]
