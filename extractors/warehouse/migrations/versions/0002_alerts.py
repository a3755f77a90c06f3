"""Health alerts: ops.alerts (drift, invalid-output rate and volume alerts of the daily check).

Revision ID: 0002_alerts
Revises: 0001_initial
Create Date: 2025-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002_alerts"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    """Create ``ops.alerts`` (frozen copy of ``models.alerts`` at 0002)."""
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "check_name", sa.Text, nullable=False, comment="drift | invalid_output_rate | volume"
        ),
        sa.Column("schema_name", sa.Text),
        sa.Column(
            "subject",
            sa.Text,
            nullable=False,
            comment="what the alert is about, e.g. 'cxr:Pleural Effusion' or 'cxr:hf:adapter-x'",
        ),
        sa.Column("observed", sa.Float),
        sa.Column("expected", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("n", sa.Integer),
        sa.Column("n_baseline", sa.Integer),
        sa.Column("p_value", sa.Float),
        sa.Column("q_value", sa.Float),
        sa.Column(
            "message",
            sa.Text,
            nullable=False,
            comment="counts and rates only, never report text",
        ),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("dag_id", sa.Text),
        sa.Column("run_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
        sa.CheckConstraint(
            "check_name in ('drift', 'invalid_output_rate', 'volume')",
            name="ck_alerts_check_name",
        ),
        sa.UniqueConstraint("window_start", "check_name", "subject", name="uq_alerts_key"),
        schema="ops",
    )
    op.create_index("ix_alerts_window_start", "alerts", ["window_start"], schema="ops")


def downgrade() -> None:
    """Drop ``ops.alerts``."""
    op.drop_index("ix_alerts_window_start", table_name="alerts", schema="ops")
    op.drop_table("alerts", schema="ops")
