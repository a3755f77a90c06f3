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
