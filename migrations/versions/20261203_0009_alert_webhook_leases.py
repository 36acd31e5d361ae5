"""Alert webhook deliveries are leased like the other durable work (revision 0009)."""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("webhook_lease_owner", sa.String(length=120), nullable=True))
        batch.add_column(
            sa.Column("webhook_lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("webhook_lease_expires_at")
        batch.drop_column("webhook_lease_owner")
