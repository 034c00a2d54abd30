"""Store writes a commit leaves until its transaction is durable (``steppewatch.archive``).

Before this, a commit deleted or rewrote objects before its transaction committed: a
crash in between left the index pointing at a deleted object (every retry failed until
``reindex``). Now objects under new keys are written first, the index commits together
with a row here for each delete or in-place rewrite it decided, and only then are those
carried out and their rows removed. Rows a crash leaves are carried out by the next run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_writes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("article_id", sa.String(16)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pending_writes")
