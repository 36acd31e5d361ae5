"""Learning policies: stored posteriors, and what a learning policy did in each decision
(revision 0012)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "policy_posteriors",
        sa.Column("study_id", sa.Uuid(), nullable=False),
        sa.Column("protocol_version", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.Uuid(), nullable=True),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inputs_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inputs_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows_used", sa.Integer(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("noise_variance", sa.Double(), nullable=False),
        sa.Column("mean", _JSON, nullable=False),
        sa.Column("covariance", _JSON, nullable=False),
        sa.Column("inputs", _JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "protocol_version", "scheduled_for"),
    )
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.add_column(sa.Column("learning", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("learning")
    op.drop_table("policy_posteriors")
