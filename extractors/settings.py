"""One settings object for the whole package, read from ``RRIEF_``-prefixed environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """RRIEF configuration. Every field maps to ``RRIEF_<FIELD>`` (e.g. ``RRIEF_SCHEMA_PATH``)."""

    model_config = SettingsConfigDict(env_prefix="RRIEF_", extra="ignore")

    schema_path: str = Field(
        default="",
        description="extra directories with site schema files, separated by the OS path separator",
    )
    log_level: str = Field(default="INFO", description="logging level of the rrief logger")
    max_report_chars: int = Field(
        default=2_000_000, description="reports longer than this become error lines, not crashes"
    )
    llm_allowed_hosts: str = Field(
        default="",
        description="comma-separated non-private hosts the openai backend may reach (egress guard)",
    )

    warehouse_url: str = Field(
        default="",
        description="SQLAlchemy URL of the research warehouse; empty = embedded PostgreSQL in .rrief/",
    )
    pseudonym_key: str = Field(
        default="", repr=False, description="secret HMAC key for patient/accession pseudonyms"
    )
    backend: str = Field(default="rules", description="extraction backend: rules, hf or openai")
    adapter: str = Field(default="", description="adapter dir (hf) or adapter name (openai)")
    base_model: str = Field(default="", description="local directory of the base model (hf)")
    llm_endpoint: str = Field(default="", description="OpenAI-compatible base URL (openai)")
    batch_size: int = Field(default=200, ge=1, description="reports per extraction task")
    dbt_project_dir: str = Field(default="dbt", description="path of the dbt project")
    dbt_bin: str = Field(default=".venv-dbt/bin/dbt", description="dbt executable (own venv)")

    def schema_dirs(self) -> list[Path]:
        return [Path(p) for p in self.schema_path.split(os.pathsep) if p.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
