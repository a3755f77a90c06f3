"""Source-freshness alerts and the indexes of the incremental dbt models.

``ops.alerts`` accepts the ``freshness`` check (``dbt source freshness`` over ``raw``, run by
``rrief_daily`` before the models). The incremental intermediate model finds what changed since
its last build by ``raw.reports.updated_at`` and ``raw.extractions.extracted_at``: both indexed,
so a daily build reads the day's rows, not the warehouse.

Revision ID: 0006_freshness_alerts
Revises: 0005_validation_results
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_freshness_alerts"
down_revision: str | None = "0005_validation_results"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_alerts_check_name"
OLD_CHECKS = ("drift", "invalid_output_rate", "volume", "reconciliation")
NEW_CHECKS = (*OLD_CHECKS, "freshness")
INDEXES = (
    ("ix_reports_updated_at", "reports", "updated_at"),
    ("ix_extractions_extracted_at", "extractions", "extracted_at"),
)


def _checks(names: Sequence[str]) -> None:
    op.drop_constraint(op.f(NAME), "alerts", schema="ops", type_="check")
    listed = ", ".join(f"'{n}'" for n in names)
    op.create_check_constraint(op.f(NAME), "alerts", f"check_name in ({listed})", schema="ops")
    op.alter_column(
        "alerts", "check_name", schema="ops", comment=" | ".join(names), existing_type=sa.Text
    )


def upgrade() -> None:
    """Admit ``freshness`` alerts; index the change timestamps of the raw tables."""
    _checks(NEW_CHECKS)
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], schema="raw")


def downgrade() -> None:
    """Drop the indexes; freshness alerts go with the wider check."""
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table, schema="raw")
    op.execute("DELETE FROM ops.alerts WHERE check_name = 'freshness'")
    _checks(OLD_CHECKS)
