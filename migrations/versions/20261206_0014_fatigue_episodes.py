"""Fatigue episodes: the burden factor in force on participants and in the decision log,
and how a care flag was resolved (revision 0014)."""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.add_column(
        "participants",
        sa.Column("burden_factor", sa.Double(), server_default=sa.text("1.0"), nullable=False),
    )
    op.add_column("decisions", sa.Column("burden_factor", sa.Double(), nullable=True))
    op.add_column("care_flags", sa.Column("resolution", sa.String(length=24), nullable=True))


def downgrade() -> None:
    op.drop_column("care_flags", "resolution")
    op.drop_column("decisions", "burden_factor")
    op.drop_column("participants", "burden_factor")
