"""The one settings object: environment variables with the RRIEF_ prefix."""

from __future__ import annotations

import pytest

from extractors.settings import Settings


def test_environment_variables_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRIEF_BATCH_SIZE", "17")
    monkeypatch.setenv("RRIEF_RIS_KIND", "fhir")
    s = Settings()
    assert s.batch_size == 17 and s.ris_kind == "fhir"


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRIEF_PSEUDONYM_KEY", "very-secret-key-123")
    monkeypatch.setenv("RRIEF_LLM_API_KEY", "sk-local-456")
    text = repr(Settings())
    assert "very-secret" not in text and "sk-local" not in text


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("adapters/cxr-v1", "cxr", "adapters/cxr-v1"),
        ("adapters/cxr-v1", "mammo", "adapters/cxr-v1"),
        ("cxr=cxr-v1, mammo = mammo-v2", "mammo", "mammo-v2"),
        ("cxr=cxr-v1,mammo=mammo-v2", "ccta", ""),
        ("", "cxr", ""),
    ],
)
def test_adapter_per_schema(value: str, schema: str, expected: str) -> None:
    assert Settings(adapter=value).adapter_for(schema) == expected


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRIEF_RIS_KIND", "ftp")
    with pytest.raises(ValueError, match="ris_kind"):
        Settings()


# Where settings may be read: the edges (CLI commands, DAG task bodies, app factories). Library
# modules take explicit values, so they can be tested and reused without the environment.
EDGE_MODULES = (
    "extractors/cli.py",
    "extractors/settings.py",
    "extractors/pipeline/tasks.py",  # the DAG task bodies
    "extractors/lifecycle/tasks.py",  # the rrief_train / rrief_reextract task bodies
    "extractors/health/check.py",  # check_from_context: the check_health task body
)
EDGE_NAMES = ("command.py", "commands.py", "app.py")  # click commands and app factories


def test_settings_are_read_only_at_the_edges() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted((root / "extractors").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in EDGE_MODULES or path.name in EDGE_NAMES or path.name.endswith("_command.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "get_settings":
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, (
        "get_settings() called in library code; read settings at an edge and pass values "
        f"down: {offenders}"
    )
