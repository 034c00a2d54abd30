"""Language editions: one row per edition URL an article's page declares (hreflang).

A site's English and Russian editions of one article share no text, so the shingle
level never joins them and an alert rule with terms in both languages sent two
messages. Each stored article's declared editions are kept here, keyed by a
scheme- and ``www.``-agnostic hash of the edition URL (``index.edition_key``), with the
declared language; ``Index.commit`` joins two articles' stories when each declares the
other (docs/DEDUP.md, "Language editions"). Derived from the records (``editions``), so
``reindex`` restores it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "editions",
        sa.Column("url_key", sa.String(32), nullable=False),
        sa.Column("article_id", sa.String(16), nullable=False),
        sa.Column("hreflang", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("url_key", "article_id"),
    )
    op.create_index("ix_editions_article", "editions", ["article_id"])


def downgrade() -> None:
    op.drop_table("editions")
