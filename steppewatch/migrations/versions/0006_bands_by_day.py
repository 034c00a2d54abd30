"""LSH bands keyed (band, hash, day, article_id): a lookup reads only the dedup window.

With the key (band, hash, article_id), the rows of one band value are ordered by
article, so a lookup read every article that ever had that band value and dropped
those outside the week either side afterwards. Two unrelated articles share a band
value about once in 400 bands (r=2 at Jaccard 0.05), so with a year of articles (1M)
a probe's 64 lookups read some 160,000 rows to keep the few thousand in its window,
and the cost grew with the index (bench/dedup_scaling.py). With ``day`` before
``article_id``, each lookup is a range scan over the window only; on PostgreSQL every
column the lookup needs is in the key, so it is an index-only scan.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _rekey(columns: list[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":  # a WITHOUT ROWID table cannot change its key in place
        op.create_table(
            "bands_rekeyed",
            sa.Column("band", sa.SmallInteger, nullable=False),
            sa.Column("hash", sa.BigInteger, nullable=False),
            sa.Column("day", sa.String(10), nullable=False),
            sa.Column("article_id", sa.String(16), nullable=False),
            sa.PrimaryKeyConstraint(*columns),
            sqlite_with_rowid=False,
        )
        op.execute("INSERT INTO bands_rekeyed (band, hash, day, article_id) "
                   "SELECT band, hash, day, article_id FROM bands")
        op.drop_table("bands")
        op.rename_table("bands_rekeyed", "bands")
    else:
        op.drop_constraint("bands_pkey", "bands", type_="primary")
        op.create_primary_key("bands_pkey", "bands", columns)


def upgrade() -> None:
    _rekey(["band", "hash", "day", "article_id"])


def downgrade() -> None:
    _rekey(["band", "hash", "article_id"])
