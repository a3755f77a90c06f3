"""Report provenance: raw.reports.result_status and raw.reports.provenance.

``result_status`` (final | corrected | preliminary) tells researchers which reports are not
final yet (loaded only with RRIEF_RIS_INCLUDE_PRELIMINARY); ``provenance`` records where the
connector found each piece (report-time source such as OBR-22/OBX-14/MSH-7, accession source,
text source), the precision of partial dates and the flags met while reading (e.g.
invalid_bytes_replaced). Field names and flags only: never a value of the source record.

Revision ID: 0004_report_provenance
Revises: 0003_annotation
Create Date: 2025-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004_report_provenance"
down_revision: str | None = "0003_annotation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two columns (existing rows: final, empty provenance)."""
    op.add_column(
        "reports",
        sa.Column(
            "result_status",
            sa.Text,
            nullable=False,
            server_default=sa.text("'final'"),
            comment="final | corrected | preliminary",
        ),
        schema="raw",
    )
    op.create_check_constraint(
        "ck_reports_result_status",
        "reports",
        "result_status in ('final', 'corrected', 'preliminary')",
        schema="raw",
    )
    op.add_column(
        "reports",
        sa.Column(
            "provenance",
            JSONB,
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
            comment="time/id/text source, date precisions and flags; field names only",
        ),
        schema="raw",
    )


def downgrade() -> None:
    """Drop the two columns."""
    op.drop_column("reports", "provenance", schema="raw")
    op.drop_constraint("ck_reports_result_status", "reports", schema="raw", type_="check")
    op.drop_column("reports", "result_status", schema="raw")
