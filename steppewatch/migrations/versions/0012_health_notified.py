"""Who was told of a site's open incident (``steppewatch.health``).

An ops recipient added while an incident was open never heard of it: the incident mail
went out once, to whoever was configured then. The addresses told are kept with the
incident; a later check tells the ones missing, and the recovery goes to everyone told.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("site_health") as batch:
        batch.add_column(sa.Column("notified", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("site_health") as batch:
        batch.drop_column("notified")
