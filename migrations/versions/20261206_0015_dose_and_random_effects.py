"""Dose-constrained randomization: what the dose constraint did in each decision;
per-participant sufficient statistics of posteriors with random effects; and care flags
sent through the care routes (revision 0015)."""

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
    with op.batch_alter_table("alert_sends") as batch:
        batch.add_column(sa.Column("flag_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_alert_sends_flag_id_care_flags",
            "care_flags",
            ["flag_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_alert_sends_flag", ["flag_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("alert_sends") as batch:
        batch.drop_index("ix_alert_sends_flag")
        batch.drop_constraint("fk_alert_sends_flag_id_care_flags", type_="foreignkey")
        batch.drop_column("flag_id")
    with op.batch_alter_table("policy_posteriors") as batch:
        batch.drop_column("participants")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("dose")
