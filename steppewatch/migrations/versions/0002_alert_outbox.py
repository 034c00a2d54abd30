"""Alert outbox: one row per (rule, story), recorded before anything is sent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("story_id", sa.String(16), nullable=False),
        sa.Column("article_id", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
        sa.Column("snippet_text", sa.Text),
        sa.Column("snippet_html", sa.Text),
        sa.UniqueConstraint("rule", "story_id", name="uq_alert_rule_story"),
    )
    op.create_index("ix_alert_outbox_status", "alert_outbox", ["status", "mode"])


def downgrade() -> None:
    op.drop_table("alert_outbox")
