"""Reading report files (JSONL, CSV) and writing result JSONL."""

from extractors.io.readers import InputError, InputProblem, iter_reports
from extractors.io.writers import JsonlWriter

__all__ = ["InputError", "InputProblem", "JsonlWriter", "iter_reports"]
