"""A fencing token on alert claims (``steppewatch.alerts.outbox``).

A sender still sending when its claim expired was overtaken and the alert went out twice,
and a slow sender that then failed returned a row another had sent to pending. A claim now
carries a token; the sender renews its lease while it works, only the token's holder
settles the row, and a lease is taken over only once its holder stopped renewing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_outbox") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("alert_outbox") as batch:
        batch.drop_column("claim_token")
