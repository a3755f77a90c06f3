"""Find schemas by id: built-ins shipped with the package plus a site's own schema files.

A site adds a report type by dropping a YAML/JSON file in a directory listed in
``RRIEF_SCHEMA_PATH`` (or by passing the file path wherever a schema id is expected). The edges
pass those directories as ``search_path`` (``Settings.schema_dirs()``); the built-ins always come
first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from extractors.schemas.model import SchemaError, SchemaSpec

BUILTIN_DIR = Path(__file__).parent / "builtin"
_SUFFIXES = (".yaml", ".yml", ".json")


def load_schema_file(path: str | Path) -> SchemaSpec:
    """Parse one schema file, raising :class:`SchemaError` with the file name and the problem."""
    path = Path(path)
    try:
        raw_text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc.strerror}") from None
    try:
        data: Any = json.loads(raw_text) if path.suffix == ".json" else yaml.safe_load(raw_text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SchemaError(f"schema file {path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SchemaError(f"schema file {path} must hold a mapping at the top level")
    try:
        return SchemaSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<top>'}: {e['msg']}" for e in exc.errors()
        )
        raise SchemaError(f"schema file {path} is invalid: {problems}") from None


@lru_cache(maxsize=8)
def _scan(dirs: tuple[Path, ...]) -> dict[str, SchemaSpec]:
    found: dict[str, SchemaSpec] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.iterdir()):
            if path.suffix not in _SUFFIXES:
                continue
            spec = load_schema_file(path)
            if spec.id in found:
                raise SchemaError(f"schema {spec.id} is declared twice (second time in {path})")
            found[spec.id] = spec
    return found


def available_schemas(search_path: Sequence[Path | str] = ()) -> dict[str, SchemaSpec]:
    """All known schemas keyed by ``name@version``: built-ins, then ``search_path``'s files."""
    return dict(_scan((BUILTIN_DIR, *(Path(d) for d in search_path))))


def get_schema(ref: str, search_path: Sequence[Path | str] = ()) -> SchemaSpec:
    """Resolve ``cxr`` (latest version), ``cxr@1`` or a path to a schema file."""
    if any(ref.endswith(s) for s in _SUFFIXES) and Path(ref).exists():
        return load_schema_file(ref)
    schemas = available_schemas(search_path)
    if "@" in ref:
        if ref in schemas:
            return schemas[ref]
        raise SchemaError(f"unknown schema {ref!r}; known: {', '.join(sorted(schemas))}")
    versions = [s for s in schemas.values() if s.name == ref]
    if not versions:
        raise SchemaError(f"unknown schema {ref!r}; known: {', '.join(sorted(schemas))}")
    return max(versions, key=lambda s: s.version)
