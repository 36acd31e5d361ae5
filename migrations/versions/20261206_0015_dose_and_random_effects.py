"""Dose-constrained randomization: what the dose constraint did in each decision; and
per-participant sufficient statistics of posteriors with random effects (revision 0015)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("dose", _JSON, nullable=True))
    with op.batch_alter_table("policy_posteriors") as batch:
        batch.add_column(sa.Column("participants", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_posteriors") as batch:
        batch.drop_column("participants")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("dose")
