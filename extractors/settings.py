"""One settings object for the whole package, read from ``RRIEF_``-prefixed environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_REPORT_CHARS = 2_000_000


class DbtSettings(BaseSettings):
    """Where dbt and its project are installed and how ``rrief_daily`` runs it: the only
    settings read when the DAG file is parsed (cosmos renders the dbt task group from the
    manifest), so they hold paths and a mode, never a URL or a secret."""

    model_config = SettingsConfigDict(env_prefix="RRIEF_", extra="ignore")

    dbt_project_dir: str = Field(default="dbt", description="path of the dbt project")
    dbt_bin: str = Field(default=".venv-dbt/bin/dbt", description="dbt executable (own venv)")
    dbt_target_path: str = Field(
        default="", description="dbt target dir (default dbt/target); one per concurrent run"
    )
    dbt_manifest: str = Field(
        default="",
        description="manifest.json the DAG's dbt task group is rendered from (make dbt-manifest); "
        "empty = <dbt project>/target/manifest.json",
    )
    dbt_execution_mode: Literal["per_model", "build"] = Field(
        default="per_model",
        description="per_model: one Airflow task per dbt model (dbt build of the model and its "
        "tests); build: one task running dbt build over the project",
    )
    dbt_docs_dir: str = Field(
        default="",
        description="where the pipeline writes the dbt docs site the Airflow plugin serves; "
        "empty = <dbt target>/docs",
    )
    dbt_lookback_days: int = Field(
        default=3,
        ge=0,
        description="incremental dbt models re-read the reports and extractions changed in the "
        "last N days before their newest row (late re-extractions, reclassifications)",
    )

    def target_dir(self) -> Path:
        """dbt's target directory (``RRIEF_DBT_TARGET_PATH``, else ``<project>/target``)."""
        return Path(self.dbt_target_path or Path(self.dbt_project_dir) / "target")

    def docs_dir(self) -> Path:
        """Where ``dbt docs generate`` writes and the health app serves the docs site."""
        return Path(self.dbt_docs_dir) if self.dbt_docs_dir else self.target_dir() / "docs"


class Settings(DbtSettings):
    """RRIEF configuration. Every field maps to ``RRIEF_<FIELD>`` (e.g. ``RRIEF_SCHEMA_PATH``)."""

    model_config = SettingsConfigDict(env_prefix="RRIEF_", extra="ignore")

    schema_path: str = Field(
        default="",
        description="extra directories with site schema files, separated by the OS path separator",
    )
    log_level: str = Field(default="INFO", description="logging level of the rrief logger")
    max_report_chars: int = Field(
        default=DEFAULT_MAX_REPORT_CHARS,
        description="reports longer than this become error lines, not crashes",
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
    backend: str = Field(
        default="rules",
        description="extraction backend: rules, hf, openai or cascade (rules, then an LLM for hard reports)",
    )
    adapter: str = Field(
        default="",
        description="adapter dir (hf) or served name (openai); per schema: cxr=cxr-v1,mammo=mammo-v1",
    )
    base_model: str = Field(default="", description="local directory of the base model (hf)")
    llm_endpoint: str = Field(default="", description="OpenAI-compatible base URL (openai)")
    llm_api_key: str = Field(
        default="", repr=False, description="bearer token for the LLM server (vLLM --api-key)"
    )
    batch_size: int = Field(default=200, ge=1, description="reports per extraction task")
    researcher_role: str = Field(
        default="researcher", description="database role granted SELECT on the marts"
    )
    ris_kind: Literal["sql", "fhir", "hl7v2"] = Field(default="sql", description="RIS connector")
    ris_url: str = Field(default="", description="SQLAlchemy URL (sql) or FHIR base URL (fhir)")
    ris_table: str = Field(default="report_feed", description="sql: table or view to read")
    ris_query: str = Field(default="", description="sql: query with :start/:end instead of a table")
    ris_folder: str = Field(default="", description="hl7v2 drop folder, or fhir Bundle folder")
    ris_source: str = Field(default="ris", description="source name, part of every report key")
    ris_timezone: str = Field(
        default="UTC", description="IANA zone of RIS timestamps sent without an offset"
    )
    ris_exam_map: str = Field(
        default="", description="site exam mapping file (YAML): exam code/name -> report type"
    )
    ris_final_statuses: str = Field(
        default="F,FINAL", description="result statuses (OBR-25/OBX-11) that mean final"
    )
    ris_corrected_statuses: str = Field(
        default="C,A,CORRECTED", description="result statuses that mean corrected/amended"
    )
    ris_preliminary_statuses: str = Field(
        default="P,PRELIM,PRELIMINARY,WET READ", description="result statuses that mean preliminary"
    )
    ris_include_preliminary: bool = Field(
        default=False, description="also load preliminary reports (HL7 and FHIR)"
    )
    ris_hl7_encoding: str = Field(
        default="utf-8", description="hl7v2: character set of messages whose MSH-18 is empty"
    )
    ris_hl7_exclude_obx: str = Field(
        default="TCM", description="hl7v2: OBX-3 codes left out of the report text (comments)"
    )
    validation_max_positive_rate: float = Field(
        default=0.95, gt=0.0, le=1.0, description="prevalence sanity: max positive share per batch"
    )
    validation_min_reports: int = Field(
        default=50, ge=1, description="prevalence sanity applies to batches at least this large"
    )

    alert_invalid_rate: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="alert when a day's invalid-output rate exceeds it",
    )
    alert_volume_ratio: float = Field(
        default=0.2, ge=0.0, le=1.0, description="alert when volume < this x same-weekday median"
    )
    drift_alpha: float = Field(
        default=0.01, gt=0.0, lt=1.0, description="false-discovery rate of the daily drift tests"
    )
    drift_min_effect: float = Field(
        default=0.05, ge=0.0, le=1.0, description="smallest prevalence change (absolute) to flag"
    )
    drift_min_daily_n: int = Field(default=30, ge=1, description="reports a day before testing")
    drift_baseline_days: int = Field(default=28, ge=1, description="trailing days of baseline")
    drift_min_baseline_days: int = Field(
        default=7, ge=1, description="baseline days with data needed before testing"
    )

    annotate_host: str = Field(
        default="127.0.0.1",
        description="address `rrief annotate serve` binds (loopback: this machine only)",
    )
    annotate_port: int = Field(default=8090, ge=1, le=65535, description="its port")
    annotate_session_secret: str = Field(
        default="",
        repr=False,
        description="signs the workbench's session cookies; empty = random per start",
    )
    annotate_secure_cookie: bool = Field(
        default=False,
        description="mark the workbench's session cookie Secure (set it when served behind TLS)",
    )
    annotate_max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="largest request body the workbench accepts"
    )

    fetch_lookback_days: int = Field(
        default=2, ge=0, le=60, description="re-read this many earlier days each run (late reports)"
    )
    reconcile_days: int = Field(
        default=7, ge=1, le=366, description="days whose RIS and warehouse counts are compared"
    )
    gx_dir: str = Field(
        default=".rrief/gx",
        description="Great Expectations validation results and Data Docs; empty = not kept",
    )
    alert_email_to: str = Field(
        default="", description="comma-separated recipients of failure and health alert mail"
    )
    alert_email_from: str = Field(
        default="", description="sender of alert mail (default: the SMTP connection's from_email)"
    )
    alert_smtp_conn_id: str = Field(
        default="smtp_default", description="Airflow connection of the SMTP server for alert mail"
    )
    alert_webhook_url: str = Field(
        default="", repr=False, description="URL that receives each alert as a JSON POST"
    )

    adapters_dir: str = Field(
        default=".rrief/adapters",
        description="where rrief_train writes adapters (the volume vLLM mounts as /adapters)",
    )
    lifecycle_dir: str = Field(
        default=".rrief/lifecycle",
        description="rrief_train's gold snapshots (hashed, read-only) and evaluation files",
    )
    gate_micro_f1_margin: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="gate: how much lower a candidate's micro-F1 may be",
    )
    gate_label_f1_drop: float = Field(
        default=0.05, ge=0.0, le=1.0, description="gate: largest drop of any one label's F1"
    )
    auto_promote: bool = Field(
        default=False, description="rrief_train promotes a candidate that passes the gate"
    )
    train_min_new_labels: int = Field(
        default=50, ge=1, description="final labels beyond the last training that start rrief_train"
    )

    def adapter_for(self, schema_name: str) -> str:
        """The adapter for ``schema_name``: ``RRIEF_ADAPTER`` as is, or its ``schema=adapter``
        entry when it lists one per schema (an adapter only knows the schema it was trained on).
        """
        if "=" not in self.adapter:
            return self.adapter
        entries = (part.partition("=") for part in self.adapter.split(","))
        mapping = {name.strip(): value.strip() for name, _, value in entries if value.strip()}
        return mapping.get(schema_name, "")

    def schema_dirs(self) -> list[Path]:
        return [Path(p) for p in self.schema_path.split(os.pathsep) if p.strip()]


def get_settings() -> Settings:
    """Read the settings from the environment now.

    Only the edges call this — CLI commands, DAG task bodies, app factories — once each, and
    pass the values down; library functions take explicit arguments. Not cached, so a test or
    the demo that changes the environment is seen by the next edge without clearing anything.
    """
    return Settings()


def get_dbt_settings() -> DbtSettings:
    """Only the dbt installation settings (:class:`DbtSettings`): what the DAG file may read
    when it is parsed, without validating (or depending on) any other setting."""
    return DbtSettings()
