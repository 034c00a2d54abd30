"""Story evidence beside each shingle set: phrases, paragraph hashes and figures.

The same-story decision (``dedup.same_story``) no longer rests on word Jaccard alone:
it drops a same-site pair's shared template paragraphs, asks for shared phrases (word
bigrams) and for agreeing figures (docs/DEDUP.md). A stored article's side of that
comparison lives in three packed columns. They are nullable: rows written before this
revision keep NULL and are compared on their words as before, until ``steppewatch
reindex`` (which recomputes every row from the store) fills them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = ("phrases", "paragraphs", "numbers")


def upgrade() -> None:
    with op.batch_alter_table("shingles") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shingles") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
