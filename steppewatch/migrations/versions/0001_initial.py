"""Initial index schema: articles, contents, urls, shingles, LSH bands.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("canonical_url", sa.Text, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True)),
        sa.Column("language", sa.String(16)),
        sa.Column("title", sa.Text),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("story_id", sa.String(16), nullable=False),
        sa.Column("alias_of", sa.String(16)),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_checked", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checks", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_index("ix_articles_story", "articles", ["story_id"])
    op.create_index("ix_articles_site_day", "articles", ["site", "day"])
    op.create_index("ix_articles_content_hash", "articles", ["content_hash"])
    op.create_table(
        "contents",
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("article_id", sa.String(16), nullable=False),
    )
    op.create_table(
        "urls",
        sa.Column("url_hash", sa.String(32), primary_key=True),
        sa.Column("article_id", sa.String(16), nullable=False),
    )
    op.create_index("ix_urls_article", "urls", ["article_id"])
    op.create_table(
        "shingles",
        sa.Column("article_id", sa.String(16), primary_key=True),
        sa.Column("language", sa.String(16)),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("story_id", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "bands",
        sa.Column("band", sa.SmallInteger, nullable=False),
        sa.Column("hash", sa.BigInteger, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("article_id", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("band", "hash", "article_id"),
    )
    op.create_index("ix_bands_lookup", "bands", ["band", "hash", "day"])


def downgrade() -> None:
    for table in ("bands", "shingles", "urls", "contents", "articles"):
        op.drop_table(table)
