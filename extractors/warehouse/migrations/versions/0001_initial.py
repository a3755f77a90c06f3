"""Initial warehouse: raw.reports, raw.extractions, raw.quarantine, ops.run_metrics,
ops.task_failures.

Revision ID: 0001_initial
Revises:
Create Date: 2025-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
KEY = ("report_key", "schema_name", "schema_version", "extractor_version")


def upgrade() -> None:
    """Create the raw and ops schemas and their tables (frozen copy of ``models`` at 0001)."""
    op.execute("CREATE SCHEMA IF NOT EXISTS raw")
    op.execute("CREATE SCHEMA IF NOT EXISTS ops")

    op.create_table(
        "reports",
        sa.Column(
            "report_key", sa.Text, nullable=False, comment="HMAC of source + accession number"
        ),
        sa.Column("patient_key", sa.Text, nullable=False, comment="HMAC of the patient id"),
        sa.Column("accession_key", sa.Text, nullable=False, comment="HMAC of the accession number"),
        sa.Column(
            "source", sa.Text, nullable=False, comment="which RIS connector delivered the report"
        ),
        sa.Column(
            "modality", sa.Text, nullable=False, comment="DICOM modality: CR, DX, MG, CT, ..."
        ),
        sa.Column(
            "report_type", sa.Text, comment="schema to extract with (cxr|mammo|ccta), or null"
        ),
        sa.Column("exam_at", sa.DateTime(timezone=True)),
        sa.Column("report_final_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report_text", sa.Text, nullable=False),
        sa.Column(
            "content_sha256", sa.Text, nullable=False, comment="SHA-256 of report_text (UTF-8)"
        ),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("report_key", name="pk_reports"),
        schema="raw",
    )
    op.create_index("ix_reports_report_final_at", "reports", ["report_final_at"], schema="raw")
    op.create_index(
        "ix_reports_report_type_final_at",
        "reports",
        ["report_type", "report_final_at"],
        schema="raw",
    )

    op.create_table(
        "extractions",
        sa.Column("extraction_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("report_key", sa.Text, nullable=False),
        sa.Column("schema_name", sa.Text),
        sa.Column("schema_version", sa.Integer),
        sa.Column("backend", sa.Text),
        sa.Column("extractor_version", sa.Text),
        sa.Column("adapter_id", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("labels", JSONB),
        sa.Column("evidence", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("error", sa.Text),
        sa.Column(
            "content_sha256", sa.Text, nullable=False, comment="hash of the text extracted from"
        ),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("extraction_id", name="pk_extractions"),
        sa.ForeignKeyConstraint(
            ["report_key"], ["raw.reports.report_key"], name="fk_extractions_report_key"
        ),
        sa.CheckConstraint("status in ('ok', 'error')", name="ck_extractions_status"),
        sa.UniqueConstraint(*KEY, name="uq_extractions_key"),
        schema="raw",
    )

    op.create_table(
        "quarantine",
        sa.Column("quarantine_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("report_key", sa.Text, nullable=False),
        sa.Column("schema_name", sa.Text),
        sa.Column("schema_version", sa.Integer),
        sa.Column("extractor_version", sa.Text),
        sa.Column("labels", JSONB),
        sa.Column("evidence", JSONB),
        sa.Column(
            "failed_expectations",
            JSONB,
            nullable=False,
            comment="list of {expectation, column, reason}",
        ),
        sa.Column("run_id", sa.Text),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("quarantine_id", name="pk_quarantine"),
        sa.ForeignKeyConstraint(
            ["report_key"], ["raw.reports.report_key"], name="fk_quarantine_report_key"
        ),
        sa.UniqueConstraint(*KEY, name="uq_quarantine_key"),
        schema="raw",
    )

    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("dag_id", sa.Text),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("map_index", sa.Integer, nullable=False, server_default=sa.text("-1")),
        sa.Column("data_interval_start", sa.DateTime(timezone=True)),
        sa.Column("data_interval_end", sa.DateTime(timezone=True)),
        sa.Column("schema_name", sa.Text),
        sa.Column("backend", sa.Text),
        sa.Column("adapter_id", sa.Text),
        sa.Column("n_in", sa.Integer),
        sa.Column("n_loaded", sa.Integer),
        sa.Column("n_quarantined", sa.Integer),
        sa.Column("n_errored", sa.Integer),
        sa.Column("invalid_output_rate", sa.Float),
        sa.Column("latency_p50_ms", sa.Float),
        sa.Column("latency_p95_ms", sa.Float),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=NOW),
        sa.PrimaryKeyConstraint("run_id", "task_id", "map_index", name="pk_run_metrics"),
        schema="ops",
    )

    op.create_table(
        "task_failures",
        sa.Column("failure_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.Text),
        sa.Column("run_id", sa.Text),
        sa.Column("task_id", sa.Text),
        sa.Column("map_index", sa.Integer),
        sa.Column("try_number", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("failed_at", sa.DateTime(timezone=True), server_default=NOW),
        sa.PrimaryKeyConstraint("failure_id", name="pk_task_failures"),
        schema="ops",
    )


def downgrade() -> None:
    """Drop the tables (the schemas stay: dbt and grants may hang off them)."""
    op.drop_table("task_failures", schema="ops")
    op.drop_table("run_metrics", schema="ops")
    op.drop_table("quarantine", schema="raw")
    op.drop_table("extractions", schema="raw")
    op.drop_index("ix_reports_report_type_final_at", table_name="reports", schema="raw")
    op.drop_index("ix_reports_report_final_at", table_name="reports", schema="raw")
    op.drop_table("reports", schema="raw")
