"""alert webhook leases

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 19:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('webhook_lease_owner', sa.String(length=120), nullable=True))
        batch.add_column(
            sa.Column('webhook_lease_expires_at', sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('webhook_lease_expires_at')
        batch.drop_column('webhook_lease_owner')
