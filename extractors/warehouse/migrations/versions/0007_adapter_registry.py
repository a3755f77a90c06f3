"""Adapter registry: ops.adapters (every trained adapter, its provenance, metrics and status)
and gate alerts (a candidate adapter that failed its promotion gate).

At most one adapter per schema is ``production`` (a partial unique index), so the pipeline's
choice of adapter is never ambiguous.

Revision ID: 0007_adapter_registry
Revises: 0006_freshness_alerts
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007_adapter_registry"
down_revision: str | None = "0006_freshness_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
OLD_CHECKS = (
    "check_name in ('drift', 'invalid_output_rate', 'volume', 'reconciliation', 'freshness')"
)
NEW_CHECKS = (
    "check_name in ('drift', 'invalid_output_rate', 'volume', 'reconciliation', 'freshness', "
    "'gate')"
)
CHECK = "ck_alerts_check_name"


def _alerts_checks(condition: str, comment: str) -> None:
    op.drop_constraint(op.f(CHECK), "alerts", schema="ops", type_="check")
    op.create_check_constraint(op.f(CHECK), "alerts", condition, schema="ops")
    op.alter_column("alerts", "check_name", schema="ops", comment=comment, existing_type=sa.Text)


def upgrade() -> None:
    """Create ``ops.adapters`` (frozen copy of the model at 0007); admit ``gate`` alerts."""
    op.create_table(
        "adapters",
        sa.Column(
            "adapter_id",
            sa.Text,
            nullable=False,
            comment="<adapter directory name>@<first 12 hex of the weights sha256>",
        ),
        sa.Column("schema_name", sa.Text, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False, comment="adapter directory (adapters volume)"),
        sa.Column("served_name", sa.Text, nullable=False, comment="name vLLM serves it under"),
        sa.Column("base_model", sa.Text, nullable=False, comment="base model directory"),
        sa.Column("base_model_sha256", sa.Text, nullable=False, comment="its fingerprint"),
        sa.Column("prompt_template_version", sa.Text, nullable=False),
        sa.Column("training_sha256", sa.Text, nullable=False, comment="gold snapshot trained on"),
        sa.Column("training_size", sa.Integer, nullable=False, comment="reports in it"),
        sa.Column("hyperparameters", JSONB, nullable=False),
        sa.Column(
            "metrics",
            JSONB,
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
            comment="scores on the frozen test split (micro-F1, per-label F1, n)",
        ),
        sa.Column("status", sa.Text, nullable=False, comment="candidate | production | retired"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True)),
        sa.Column("promoted_by", sa.Text),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.Column("retired_by", sa.Text),
        sa.PrimaryKeyConstraint("adapter_id", name="pk_adapters"),
        sa.CheckConstraint(
            "status in ('candidate', 'production', 'retired')", name="ck_adapters_status"
        ),
        schema="ops",
    )
    op.create_index(
        "ix_adapters_one_production",
        "adapters",
        ["schema_name"],
        unique=True,
        schema="ops",
        postgresql_where=sa.text("status = 'production'"),
    )
    _alerts_checks(
        NEW_CHECKS, "drift | invalid_output_rate | volume | reconciliation | freshness | gate"
    )


def downgrade() -> None:
    """Drop ``ops.adapters``; gate alerts go with the wider check."""
    op.execute("DELETE FROM ops.alerts WHERE check_name = 'gate'")
    _alerts_checks(OLD_CHECKS, "drift | invalid_output_rate | volume | reconciliation | freshness")
    op.drop_index("ix_adapters_one_production", table_name="adapters", schema="ops")
    op.drop_table("adapters", schema="ops")
