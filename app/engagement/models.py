import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class EngagementKind(StrEnum):
    prompt_received = "prompt_received"
    prompt_opened = "prompt_opened"
    prompt_dismissed = "prompt_dismissed"
    exercise_started = "exercise_started"
    exercise_completed = "exercise_completed"
    helpfulness_rated = "helpfulness_rated"


class EngagementEvent(IdMixin, Base):
    __tablename__ = "engagement_events"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", "client_id"),
        sa.Index("ix_engagement_events_participant_time", "participant_id", "occurred_at"),
    )

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32))
    notification_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("notifications.id", ondelete="SET NULL"), index=True
    )
    prompt_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("scheduled_items.id", ondelete="SET NULL")
    )
    exercise_id: Mapped[str | None] = mapped_column(sa.String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    duration_seconds: Mapped[float | None]
    rating: Mapped[int | None]
