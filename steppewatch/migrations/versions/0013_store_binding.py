"""The store an index belongs to (``steppewatch.index.Index.bind_store``).

An index kept while ``STEPPEWATCH_STORE`` pointed at a new directory or bucket called every
URL already stored: the new store stayed empty and the run exited 0. The index now records
the store it was built from, and a run against another store is refused before it fetches
anything. An existing index gets no row here: it adopts the store of its first run after
the upgrade (or of ``reindex``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_binding",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("store", sa.Text, nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_binding")
