"""Rejected pages: one row per URL form of a page extraction did not take as an article.

Without it every run fetched again each page it had rejected (too short, an error page,
a consent wall, not HTML, no content), since only stored articles were known to the
index. A row says why (the newest reason), when the page was first rejected, when it was
last checked and how many times; ``Index.should_fetch`` skips it until its re-check is
due (``NEWS_REJECTION_RECHECK``). Keyed like ``urls`` (the URL's hash); a URL stored as
an article later loses its row. Listing and search pages are not remembered: they are
fetched every run for their links.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejections",
        sa.Column("url_hash", sa.String(32), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("first_rejected", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_checked", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checks", sa.Integer, nullable=False, server_default="1"),
    )


def downgrade() -> None:
    op.drop_table("rejections")
