"""Kept validation results and reconciliation alerts.

``ops.validation_results`` indexes every batch's stored Great Expectations results (the health
page links them to GX Data Docs); ``ops.alerts`` accepts the ``reconciliation`` check (RIS count
vs warehouse count per day).

Revision ID: 0005_validation_results
Revises: 0004_report_provenance
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_validation_results"
down_revision: str | None = "0004_report_provenance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
OLD_CHECKS = "check_name in ('drift', 'invalid_output_rate', 'volume')"
NEW_CHECKS = "check_name in ('drift', 'invalid_output_rate', 'volume', 'reconciliation')"


# 0002 named the check twice through the naming convention; 0005 gives it the model's name.
NAME_0002 = "ck_alerts_ck_alerts_check_name"
NAME_0005 = "ck_alerts_check_name"


def _alerts_checks(old: str, new: str, condition: str, comment: str) -> None:
    op.drop_constraint(op.f(old), "alerts", schema="ops", type_="check")
    op.create_check_constraint(op.f(new), "alerts", condition, schema="ops")
    op.alter_column("alerts", "check_name", schema="ops", comment=comment, existing_type=sa.Text)


def upgrade() -> None:
    """Create ``ops.validation_results`` (frozen copy of the model at 0005); widen the alert
    checks."""
    op.create_table(
        "validation_results",
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("dag_id", sa.Text),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("map_index", sa.Integer, nullable=False, server_default=sa.text("-1")),
        sa.Column("data_interval_start", sa.DateTime(timezone=True)),
        sa.Column("schema_name", sa.Text, nullable=False),
        sa.Column("suite_name", sa.Text, nullable=False),
        sa.Column("table_name", sa.Text, nullable=False, comment="labels | evidence | prevalence"),
        sa.Column(
            "batch", sa.Text, nullable=False, comment="report type and key range of the batch"
        ),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("evaluated", sa.Integer, nullable=False),
        sa.Column("unsuccessful", sa.Integer, nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column(
            "result_path",
            sa.Text,
            nullable=False,
            comment="the GX result under RRIEF_GX_DIR/validations (no .json suffix)",
        ),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint(
            "run_id", "task_id", "map_index", "suite_name", name="pk_validation_results"
        ),
        schema="ops",
    )
    op.create_index(
        "ix_validation_results_data_interval_start",
        "validation_results",
        ["data_interval_start"],
        schema="ops",
    )
    _alerts_checks(
        NAME_0002, NAME_0005, NEW_CHECKS, "drift | invalid_output_rate | volume | reconciliation"
    )


def downgrade() -> None:
    """Drop ``ops.validation_results``; reconciliation alerts go with the wider check."""
    op.execute("DELETE FROM ops.alerts WHERE check_name = 'reconciliation'")
    _alerts_checks(NAME_0005, NAME_0002, OLD_CHECKS, "drift | invalid_output_rate | volume")
    op.drop_index(
        "ix_validation_results_data_interval_start",
        table_name="validation_results",
        schema="ops",
    )
    op.drop_table("validation_results", schema="ops")
