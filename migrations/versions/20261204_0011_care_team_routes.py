"""Care-team routes per study, alert sends (leased), and alert escalation (revision 0011)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("escalation_due_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("escalate_after_minutes", sa.Integer(), nullable=True))
    op.create_table(
        "care_routes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "study_id", sa.Uuid(), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("severities", JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
    )
    op.create_index("ix_care_routes_study_level", "care_routes", ["study_id", "level"])
    op.create_table(
        "care_team_settings",
        sa.Column(
            "study_id",
            sa.Uuid(),
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("poll_only", sa.Boolean(), nullable=False),
        sa.Column("poll_only_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
    )
    op.create_table(
        "alert_sends",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "alert_id", sa.Uuid(), sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "route_id",
            sa.Uuid(),
            sa.ForeignKey("care_routes.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
    )
    op.create_index("ix_alert_sends_due", "alert_sends", ["status", "next_attempt_at"])
    op.create_index("ix_alert_sends_alert", "alert_sends", ["alert_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_sends_alert", table_name="alert_sends")
    op.drop_index("ix_alert_sends_due", table_name="alert_sends")
    op.drop_table("alert_sends")
    op.drop_table("care_team_settings")
    op.drop_index("ix_care_routes_study_level", table_name="care_routes")
    op.drop_table("care_routes")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("escalate_after_minutes")
        batch.drop_column("escalation_due_at")
        batch.drop_column("escalation_level")
