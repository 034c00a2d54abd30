"""Site health state: one row per site, for incident and recovery e-mails.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_health",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("empty_runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejection_rate", sa.Float),
        sa.Column("incident", sa.String(32)),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("site_health")
