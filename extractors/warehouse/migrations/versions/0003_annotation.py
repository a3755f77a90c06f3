"""Annotation store: annotation.annotators, annotation.tasks, annotation.labels and the view
annotation.task_reports (the text of tasked reports, read live from raw.reports, never copied).

Revision ID: 0003_annotation
Revises: 0002_alerts
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003_annotation"
down_revision: str | None = "0002_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
SCHEMA = "annotation"


def upgrade() -> None:
    """Create the schema, its tables (frozen copy of ``models`` at 0003) and the text view."""
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "annotators",
        sa.Column("annotator_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("username", sa.Text, nullable=False, comment="login name"),
        sa.Column(
            "pseudonym",
            sa.Text,
            nullable=False,
            comment="what labels record instead of the person (e.g. A1)",
        ),
        sa.Column("password_hash", sa.Text, nullable=False, comment="argon2id PHC string"),
        sa.Column("adjudicator", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("annotator_id", name="pk_annotators"),
        sa.UniqueConstraint("username", name="uq_annotators_username"),
        sa.UniqueConstraint("pseudonym", name="uq_annotators_pseudonym"),
        schema=SCHEMA,
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("report_key", sa.Text, nullable=False),
        sa.Column("schema_name", sa.Text, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column(
            "strategy", sa.Text, nullable=False, comment="random | stratified | disagreement"
        ),
        sa.Column("reason", sa.Text, nullable=False, comment="why this report was sampled"),
        sa.Column("batch", sa.Text, nullable=False, comment="the `rrief annotate sample` run"),
        sa.Column(
            "n_annotators",
            sa.Integer,
            nullable=False,
            server_default=sa.text("1"),
            comment="2 for the double-annotated share (agreement)",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("task_id", name="pk_tasks"),
        sa.ForeignKeyConstraint(
            ["report_key"], ["raw.reports.report_key"], name="fk_tasks_report_key"
        ),
        sa.CheckConstraint(
            "strategy in ('random', 'stratified', 'disagreement')", name="ck_tasks_strategy"
        ),
        sa.CheckConstraint("n_annotators between 1 and 5", name="ck_tasks_n_annotators"),
        sa.UniqueConstraint("report_key", "schema_name", "schema_version", name="uq_tasks_key"),
        schema=SCHEMA,
    )
    op.create_index("ix_tasks_schema", "tasks", ["schema_name", "schema_version"], schema=SCHEMA)
    op.create_table(
        "labels",
        sa.Column("label_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("annotator", sa.Text, nullable=False),
        sa.Column(
            "revision",
            sa.Integer,
            nullable=False,
            comment="1, 2, ... per task and annotator: every save is a new row, none is overwritten",
        ),
        sa.Column(
            "status", sa.Text, nullable=False, comment="draft | submitted | skipped | adjudicated"
        ),
        sa.Column("labels", JSONB, comment="validated by the task's schema"),
        sa.Column(
            "evidence",
            JSONB,
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
            comment="spans the annotator marked: {field path: [[start, end], ...]}, offsets only",
        ),
        sa.Column(
            "prefill_source", sa.Text, nullable=False, comment="backend that pre-filled the page"
        ),
        sa.Column(
            "prefill_version", sa.Text, nullable=False, comment="its version (rules, adapter id)"
        ),
        sa.Column(
            "content_sha256",
            sa.Text,
            nullable=False,
            comment="hash of the report text the page showed",
        ),
        sa.Column("skip_reason", sa.Text),
        sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("flag_note", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, comment="page opened"),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("seconds_spent", sa.Float, comment="active time on the page for this revision"),
        sa.PrimaryKeyConstraint("label_id", name="pk_labels"),
        sa.ForeignKeyConstraint(
            ["task_id"], ["annotation.tasks.task_id"], name="fk_labels_task_id"
        ),
        sa.ForeignKeyConstraint(
            ["annotator"], ["annotation.annotators.pseudonym"], name="fk_labels_annotator"
        ),
        sa.CheckConstraint(
            "status in ('draft', 'submitted', 'skipped', 'adjudicated')", name="ck_labels_status"
        ),
        sa.CheckConstraint(
            "status <> 'skipped' OR coalesce(skip_reason, '') <> ''", name="ck_labels_skip_reason"
        ),
        sa.CheckConstraint(
            "status not in ('submitted', 'adjudicated') OR labels IS NOT NULL",
            name="ck_labels_final_labels",
        ),
        sa.UniqueConstraint("task_id", "annotator", "revision", name="uq_labels_key"),
        schema=SCHEMA,
    )
    # The workbench's database role reads report text only through this view: the texts of
    # reports that have a task, live from raw.reports (the owner's rights, not the reader's).
    op.execute(
        f"CREATE VIEW {SCHEMA}.task_reports AS "
        "SELECT t.task_id, r.report_key, r.report_text, r.content_sha256 "
        f"FROM {SCHEMA}.tasks t JOIN raw.reports r ON r.report_key = t.report_key"
    )
    op.execute(
        f"COMMENT ON VIEW {SCHEMA}.task_reports IS "
        "'report text of tasked reports, read from raw.reports at display time'"
    )


def downgrade() -> None:
    """Drop the view and the tables (the schema stays, like raw and ops)."""
    op.execute(f"DROP VIEW IF EXISTS {SCHEMA}.task_reports")
    op.drop_table("labels", schema=SCHEMA)
    op.drop_index("ix_tasks_schema", table_name="tasks", schema=SCHEMA)
    op.drop_table("tasks", schema=SCHEMA)
    op.drop_table("annotators", schema=SCHEMA)
