"""Care-team reviews, treatment phases (their immutable history), the phase of each
decision, and review sends on the care routes (revision 0013)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def _owner_columns() -> list[sa.Column[object]]:
    """The id, and the study and participant a row belongs to (both tables)."""
    return [
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "study_id", sa.Uuid(), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "participant_id",
            sa.Uuid(),
            sa.ForeignKey("participants.id", ondelete="CASCADE"),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "care_reviews",
        *_owner_columns(),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column(
            "flag_id",
            sa.Uuid(),
            sa.ForeignKey("care_flags.id", ondelete="SET NULL"),
            nullable=True,
            unique=True,
        ),
        sa.Column("protocol_version", sa.Integer(), nullable=False),
        sa.Column("due_at", UTC_TIME, nullable=False),
        sa.Column("overdue_at", UTC_TIME, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("notified_at", UTC_TIME, nullable=True),
        sa.Column("escalated_at", UTC_TIME, nullable=True),
        sa.Column("notified_level", sa.Integer(), nullable=True),
        sa.Column("completed_at", UTC_TIME, nullable=True),
        sa.Column("completed_by", sa.String(length=80), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("new_phase", sa.String(length=64), nullable=True),
        sa.Column(
            "open_non_response_flag_id",
            sa.Uuid(),
            sa.ForeignKey("care_flags.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_care_reviews_study_due", "care_reviews", ["study_id", "completed_at", "due_at"]
    )
    op.create_index("ix_care_reviews_participant", "care_reviews", ["participant_id", "due_at"])
    op.create_table(
        "phase_changes",
        *_owner_columns(),
        sa.Column("from_phase", sa.String(length=64), nullable=False),
        sa.Column("to_phase", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_at", UTC_TIME, nullable=False),
        sa.Column("changed_by", sa.String(length=80), nullable=False),
        sa.Column(
            "review_id",
            sa.Uuid(),
            sa.ForeignKey("care_reviews.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_phase_changes_participant", "phase_changes", ["participant_id", "changed_at"]
    )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("phase", sa.String(length=64), nullable=True))
    with op.batch_alter_table("alert_sends") as batch:
        batch.alter_column("alert_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("review_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("content", JSON, nullable=True))
        batch.create_foreign_key(
            "fk_alert_sends_review_id_care_reviews",
            "care_reviews",
            ["review_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_alert_sends_review", ["review_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("alert_sends") as batch:
        batch.drop_index("ix_alert_sends_review")
        batch.drop_constraint("fk_alert_sends_review_id_care_reviews", type_="foreignkey")
        batch.drop_column("content")
        batch.drop_column("review_id")
    op.execute("DELETE FROM alert_sends WHERE alert_id IS NULL")
    with op.batch_alter_table("alert_sends") as batch:
        batch.alter_column("alert_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("phase")
    op.drop_index("ix_phase_changes_participant", table_name="phase_changes")
    op.drop_table("phase_changes")
    op.drop_index("ix_care_reviews_participant", table_name="care_reviews")
    op.drop_index("ix_care_reviews_study_due", table_name="care_reviews")
    op.drop_table("care_reviews")
