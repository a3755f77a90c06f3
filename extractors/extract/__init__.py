"""The extractor interface shared by the CLI, the DAG tasks and the benchmarks."""

from extractors.extract.base import EvidenceMap, ExtractionError, Extractor, Labels
from extractors.extract.registry import BACKENDS, BackendError, make_extractor, register_backend

__all__ = [
    "BACKENDS",
    "BackendError",
    "EvidenceMap",
    "ExtractionError",
    "Extractor",
    "Labels",
    "make_extractor",
    "register_backend",
]
