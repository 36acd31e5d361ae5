import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class WearableSummary(IdMixin, Base):
    """One metric over one period. A re-sync of the same period replaces the value."""

    __tablename__ = "wearable_summaries"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", "metric", "start_at", "end_at"),
        sa.Index(
            "ix_wearable_summaries_participant_metric_end", "participant_id", "metric", "end_at"
        ),
    )

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    client_id: Mapped[str | None] = mapped_column(sa.String(64))
    # A protocol WearableMetric (steps, active_minutes, sleep_minutes, …).
    metric: Mapped[str] = mapped_column(sa.String(40))
    # The normalized unit the value is stored in (e.g. count, min, percent, bpm).
    unit: Mapped[str] = mapped_column(sa.String(16))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    value: Mapped[float]
    # "kairos" or "omh" (Open mHealth / IEEE 1752.1 shape).
    source_format: Mapped[str] = mapped_column(sa.String(16), default="kairos")
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
