"""SQLAlchemy Core tables of the warehouse's ``raw``, ``ops`` and ``annotation`` schemas.

The Alembic migrations create exactly these tables; dbt (``staging``/``intermediate``/``marts``)
and the Great Expectations suites read them. Identifiers are pseudonyms only: the columns hold
``*_key`` HMAC values, never a patient id or accession number. ``annotation`` holds the gold
labels radiologists make in ``rrief annotate serve``; it never copies report text (the view
``annotation.task_reports``, made by migration 0003, reads it from ``raw.reports``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

RAW = "raw"
OPS = "ops"
ANNOTATION = "annotation"
# Schemas that dbt builds into; created (empty) by ``roles.ensure_roles`` so grants can exist
# before the first ``dbt build``.
DBT_SCHEMAS = ("staging", "intermediate", "marts")

NAMING = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}

metadata = MetaData(naming_convention=NAMING)

NOW = text("now()")

reports = Table(
    "reports",
    metadata,
    Column("report_key", Text, primary_key=True, comment="HMAC of source + accession number"),
    Column("patient_key", Text, nullable=False, comment="HMAC of the patient id"),
    Column("accession_key", Text, nullable=False, comment="HMAC of the accession number"),
    Column("source", Text, nullable=False, comment="which RIS connector delivered the report"),
    Column("modality", Text, nullable=False, comment="DICOM modality: CR, DX, MG, CT, ..."),
    Column("report_type", Text, comment="schema to extract with (cxr|mammo|ccta), or null"),
    Column("exam_at", DateTime(timezone=True)),
    Column("report_final_at", DateTime(timezone=True), nullable=False),
    Column("report_text", Text, nullable=False),
    Column("content_sha256", Text, nullable=False, comment="SHA-256 of report_text (UTF-8)"),
    Column("ingested_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column(
        "result_status",
        Text,
        nullable=False,
        server_default=text("'final'"),
        comment="final | corrected | preliminary",
    ),
    Column(
        "provenance",
        JSONB,
        nullable=False,
        server_default=text("'{}'::jsonb"),
        comment="time/id/text source, date precisions and flags; field names only",
    ),
    CheckConstraint("result_status in ('final', 'corrected', 'preliminary')", name="result_status"),
    Index("ix_reports_report_final_at", "report_final_at"),
    Index("ix_reports_report_type_final_at", "report_type", "report_final_at"),
    Index("ix_reports_updated_at", "updated_at"),  # what the incremental dbt models read
    schema=RAW,
)

EXTRACTION_KEY = ("report_key", "schema_name", "schema_version", "extractor_version")

extractions = Table(
    "extractions",
    metadata,
    Column("extraction_id", BigInteger, primary_key=True, autoincrement=True),
    Column("report_key", Text, ForeignKey("raw.reports.report_key"), nullable=False),
    Column("schema_name", Text),
    Column("schema_version", Integer),
    Column("backend", Text),
    Column("extractor_version", Text),
    Column("adapter_id", Text),
    Column("status", Text),
    Column("labels", JSONB(none_as_null=True)),
    Column("evidence", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("error", Text),
    Column("content_sha256", Text, nullable=False, comment="hash of the text extracted from"),
    Column("run_id", Text, nullable=False),
    Column("extracted_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("status in ('ok', 'error')", name="status"),
    UniqueConstraint(*EXTRACTION_KEY, name="uq_extractions_key"),
    Index("ix_extractions_extracted_at", "extracted_at"),
    schema=RAW,
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("quarantine_id", BigInteger, primary_key=True, autoincrement=True),
    Column("report_key", Text, ForeignKey("raw.reports.report_key"), nullable=False),
    Column("schema_name", Text),
    Column("schema_version", Integer),
    Column("extractor_version", Text),
    Column("labels", JSONB(none_as_null=True)),
    Column("evidence", JSONB(none_as_null=True)),
    Column(
        "failed_expectations",
        JSONB,
        nullable=False,
        comment="list of {expectation, column, reason}",
    ),
    Column("run_id", Text),
    Column("quarantined_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    UniqueConstraint(*EXTRACTION_KEY, name="uq_quarantine_key"),
    schema=RAW,
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("dag_id", Text),
    Column("task_id", Text, nullable=False),
    Column("map_index", Integer, nullable=False, server_default=text("-1")),
    Column("data_interval_start", DateTime(timezone=True)),
    Column("data_interval_end", DateTime(timezone=True)),
    Column("schema_name", Text),
    Column("backend", Text),
    Column("adapter_id", Text),
    Column("n_in", Integer),
    Column("n_loaded", Integer),
    Column("n_quarantined", Integer),
    Column("n_errored", Integer),
    Column("invalid_output_rate", Float),
    Column("latency_p50_ms", Float),
    Column("latency_p95_ms", Float),
    Column("recorded_at", DateTime(timezone=True), server_default=NOW),
    PrimaryKeyConstraint("run_id", "task_id", "map_index", name="pk_run_metrics"),
    schema=OPS,
)

task_failures = Table(
    "task_failures",
    metadata,
    Column("failure_id", BigInteger, primary_key=True, autoincrement=True),
    Column("dag_id", Text),
    Column("run_id", Text),
    Column("task_id", Text),
    Column("map_index", Integer),
    Column("try_number", Integer),
    Column("error", Text),
    Column("failed_at", DateTime(timezone=True), server_default=NOW),
    schema=OPS,
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", BigInteger, primary_key=True, autoincrement=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column(
        "check_name",
        Text,
        nullable=False,
        comment="drift | invalid_output_rate | volume | reconciliation | freshness | gate",
    ),
    Column("schema_name", Text),
    Column(
        "subject",
        Text,
        nullable=False,
        comment="what the alert is about, e.g. 'cxr:Pleural Effusion' or 'cxr:hf:adapter-x'",
    ),
    Column("observed", Float),
    Column("expected", Float),
    Column("threshold", Float),
    Column("n", Integer),
    Column("n_baseline", Integer),
    Column("p_value", Float),
    Column("q_value", Float),
    Column("message", Text, nullable=False, comment="counts and rates only, never report text"),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("dag_id", Text),
    Column("run_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint(
        "check_name in ('drift', 'invalid_output_rate', 'volume', 'reconciliation', 'freshness', 'gate')",
        name="check_name",
    ),
    UniqueConstraint("window_start", "check_name", "subject", name="uq_alerts_key"),
    Index("ix_alerts_window_start", "window_start"),
    schema=OPS,
)

validation_results = Table(
    "validation_results",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("dag_id", Text),
    Column("task_id", Text, nullable=False),
    Column("map_index", Integer, nullable=False, server_default=text("-1")),
    Column("data_interval_start", DateTime(timezone=True)),
    Column("schema_name", Text, nullable=False),
    Column("suite_name", Text, nullable=False),
    Column("table_name", Text, nullable=False, comment="labels | evidence | prevalence"),
    Column("batch", Text, nullable=False, comment="report type and key range of the batch"),
    Column("success", Boolean, nullable=False),
    Column("evaluated", Integer, nullable=False),
    Column("unsuccessful", Integer, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column(
        "result_path",
        Text,
        nullable=False,
        comment="the GX result under RRIEF_GX_DIR/validations (no .json suffix)",
    ),
    Column("validated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    PrimaryKeyConstraint(
        "run_id", "task_id", "map_index", "suite_name", name="pk_validation_results"
    ),
    Index("ix_validation_results_data_interval_start", "data_interval_start"),
    schema=OPS,
)

# --- the adapter registry: every trained adapter, its provenance, metrics and status ---------

ADAPTER_STATUSES = ("candidate", "production", "retired")

adapters = Table(
    "adapters",
    metadata,
    Column(
        "adapter_id",
        Text,
        primary_key=True,
        comment="<adapter directory name>@<first 12 hex of the weights sha256>",
    ),
    Column("schema_name", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("path", Text, nullable=False, comment="adapter directory (adapters volume)"),
    Column("served_name", Text, nullable=False, comment="name vLLM serves it under"),
    Column("base_model", Text, nullable=False, comment="base model directory"),
    Column("base_model_sha256", Text, nullable=False, comment="its fingerprint"),
    Column("prompt_template_version", Text, nullable=False),
    Column("training_sha256", Text, nullable=False, comment="gold snapshot trained on"),
    Column("training_size", Integer, nullable=False, comment="reports in it"),
    Column("hyperparameters", JSONB, nullable=False),
    Column(
        "metrics",
        JSONB,
        nullable=False,
        server_default=text("'{}'::jsonb"),
        comment="scores on the frozen test split (micro-F1, per-label F1, n)",
    ),
    Column("status", Text, nullable=False, comment="candidate | production | retired"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("created_by", Text, nullable=False),
    Column("promoted_at", DateTime(timezone=True)),
    Column("promoted_by", Text),
    Column("retired_at", DateTime(timezone=True)),
    Column("retired_by", Text),
    CheckConstraint("status in ('candidate', 'production', 'retired')", name="status"),
    Index(
        "ix_adapters_one_production",
        "schema_name",
        unique=True,
        postgresql_where=text("status = 'production'"),
    ),
    schema=OPS,
)

# --- annotation: gold labels made in the workbench (append-only label revisions) -------------

LABEL_STATUSES = ("draft", "submitted", "skipped", "adjudicated")
SAMPLING_STRATEGIES = ("random", "stratified", "disagreement")

annotators = Table(
    "annotators",
    metadata,
    Column("annotator_id", BigInteger, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False, unique=True, comment="login name"),
    Column(
        "pseudonym",
        Text,
        nullable=False,
        unique=True,
        comment="what labels record instead of the person (e.g. A1)",
    ),
    Column("password_hash", Text, nullable=False, comment="argon2id PHC string"),
    Column("adjudicator", Boolean, nullable=False, server_default=text("false")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    schema=ANNOTATION,
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", BigInteger, primary_key=True, autoincrement=True),
    Column("report_key", Text, ForeignKey("raw.reports.report_key"), nullable=False),
    Column("schema_name", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("strategy", Text, nullable=False, comment="random | stratified | disagreement"),
    Column("reason", Text, nullable=False, comment="why this report was sampled"),
    Column("batch", Text, nullable=False, comment="the `rrief annotate sample` run"),
    Column(
        "n_annotators",
        Integer,
        nullable=False,
        server_default=text("1"),
        comment="2 for the double-annotated share (agreement)",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("strategy in ('random', 'stratified', 'disagreement')", name="strategy"),
    CheckConstraint("n_annotators between 1 and 5", name="n_annotators"),
    UniqueConstraint("report_key", "schema_name", "schema_version", name="uq_tasks_key"),
    Index("ix_tasks_schema", "schema_name", "schema_version"),
    schema=ANNOTATION,
)

labels = Table(
    "labels",
    metadata,
    Column("label_id", BigInteger, primary_key=True, autoincrement=True),
    Column("task_id", BigInteger, ForeignKey("annotation.tasks.task_id"), nullable=False),
    Column("annotator", Text, ForeignKey("annotation.annotators.pseudonym"), nullable=False),
    Column(
        "revision",
        Integer,
        nullable=False,
        comment="1, 2, ... per task and annotator: every save is a new row, none is overwritten",
    ),
    Column("status", Text, nullable=False, comment="draft | submitted | skipped | adjudicated"),
    Column("labels", JSONB(none_as_null=True), comment="validated by the task's schema"),
    Column(
        "evidence",
        JSONB,
        nullable=False,
        server_default=text("'{}'::jsonb"),
        comment="spans the annotator marked: {field path: [[start, end], ...]}, offsets only",
    ),
    Column("prefill_source", Text, nullable=False, comment="backend that pre-filled the page"),
    Column("prefill_version", Text, nullable=False, comment="its version (rules, adapter id)"),
    Column(
        "content_sha256", Text, nullable=False, comment="hash of the report text the page showed"
    ),
    Column("skip_reason", Text),
    Column("flagged", Boolean, nullable=False, server_default=text("false")),
    Column("flag_note", Text),
    Column("started_at", DateTime(timezone=True), nullable=False, comment="page opened"),
    Column("saved_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("seconds_spent", Float, comment="active time on the page for this revision"),
    CheckConstraint("status in ('draft', 'submitted', 'skipped', 'adjudicated')", name="status"),
    CheckConstraint("status <> 'skipped' OR coalesce(skip_reason, '') <> ''", name="skip_reason"),
    CheckConstraint(
        "status not in ('submitted', 'adjudicated') OR labels IS NOT NULL", name="final_labels"
    ),
    UniqueConstraint("task_id", "annotator", "revision", name="uq_labels_key"),
    schema=ANNOTATION,
)

ANNOTATION_TABLES = (annotators, tasks, labels)
WAREHOUSE_TABLES = (
    reports,
    extractions,
    quarantine,
    run_metrics,
    task_failures,
    alerts,
    *ANNOTATION_TABLES,
    validation_results,
    adapters,
)
