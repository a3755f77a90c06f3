"""Versioned report schemas (``cxr@1``, ``mammo@1``, ``ccta@1`` and site-declared ones)."""

from extractors.schemas.model import FieldSpec, LabelValidationError, SchemaError, SchemaSpec
from extractors.schemas.registry import available_schemas, get_schema, load_schema_file

__all__ = [
    "FieldSpec",
    "LabelValidationError",
    "SchemaError",
    "SchemaSpec",
    "available_schemas",
    "get_schema",
    "load_schema_file",
]
