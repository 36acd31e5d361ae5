import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType
from app.core.models import IdMixin


class EmaResponse(IdMixin, Base):
    """One submitted questionnaire. Idempotent by the app's client id per participant."""

    __tablename__ = "ema_responses"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", "client_id"),
        sa.Index("ix_ema_responses_participant_answered", "participant_id", "answered_at"),
    )

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(sa.String(64))
    # The scheduled EMA prompt answered; None for a self-initiated report.
    prompt_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("scheduled_items.id", ondelete="SET NULL"), index=True
    )
    questionnaire_id: Mapped[str] = mapped_column(sa.String(64))
    questionnaire_version: Mapped[int]
    protocol_version: Mapped[int]
    # When the participant answered, by the device clock, and the device's UTC offset then.
    answered_at: Mapped[datetime]
    utc_offset_minutes: Mapped[int]
    received_at: Mapped[datetime]
    # Answered after the prompt expired: kept, and marked so analyses can exclude it.
    late: Mapped[bool] = mapped_column(default=False)


class EmaAnswer(IdMixin, Base):
    """One item's answer, denormalized (participant, time) so tailoring queries need no join."""

    __tablename__ = "ema_answers"
    __table_args__ = (
        sa.UniqueConstraint("response_id", "item_id"),
        sa.Index(
            "ix_ema_answers_participant_item_time", "participant_id", "item_id", "answered_at"
        ),
    )

    response_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ema_responses.id", ondelete="CASCADE")
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    questionnaire_id: Mapped[str] = mapped_column(sa.String(64))
    item_id: Mapped[str] = mapped_column(sa.String(64))
    answered_at: Mapped[datetime]
    # The answer as given: a number, a string, a list of strings, a boolean.
    value: Mapped[Any] = mapped_column(JSONType)
    # Numeric ratings, durations (minutes) and yes/no (1/0) as numbers, for aggregation.
    numeric_value: Mapped[float | None]
