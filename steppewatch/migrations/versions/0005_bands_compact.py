"""LSH bands in one B-tree: SQLite ``WITHOUT ROWID`` on the primary key, no second index.

The (band, hash, day) index duplicated the primary key's prefix: every stored article
wrote its 64 band rows into three B-trees (rowid table, primary key, lookup index), at
64 random places each. Clustered on the primary key, a commit writes a third of the
pages and the index is about half the size on disk. PostgreSQL keeps its heap table and
uses the primary key for lookups.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_bands_lookup", table_name="bands")
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "bands_compact",
        sa.Column("band", sa.SmallInteger, nullable=False),
        sa.Column("hash", sa.BigInteger, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("article_id", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("band", "hash", "article_id"),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO bands_compact (band, hash, day, article_id) "
               "SELECT band, hash, day, article_id FROM bands")
    op.drop_table("bands")
    op.rename_table("bands_compact", "bands")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "bands_rowid",
            sa.Column("band", sa.SmallInteger, nullable=False),
            sa.Column("hash", sa.BigInteger, nullable=False),
            sa.Column("day", sa.String(10), nullable=False),
            sa.Column("article_id", sa.String(16), nullable=False),
            sa.PrimaryKeyConstraint("band", "hash", "article_id"),
        )
        op.execute("INSERT INTO bands_rowid (band, hash, day, article_id) "
                   "SELECT band, hash, day, article_id FROM bands")
        op.drop_table("bands")
        op.rename_table("bands_rowid", "bands")
    op.create_index("ix_bands_lookup", "bands", ["band", "hash", "day"])
