import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class ItemKind(StrEnum):
    ema_prompt = "ema_prompt"
    decision_point = "decision_point"


class ItemStatus(StrEnum):
    planned = "planned"  # due in the future, or due and not yet claimed
    claimed = "claimed"  # a worker holds the lease and is processing it
    done = "done"  # fired: the prompt was sent, the decision was made
    missed = "missed"  # later than its grace period when a worker got to it
    # Re-planned away (status, time zone or protocol change), or not fired because of a DST
    # change (merged into another slot at the same instant; status_reason starts "dst:").
    cancelled = "cancelled"


# Fired EMA prompts still waiting for an answer (a partial index and the expiry sweep).
UNANSWERED = "status = 'done' AND answered_at IS NULL AND kind = 'ema_prompt'"


class ScheduledItem(IdMixin, Base):
    """One materialized EMA prompt or decision point of one participant: durable work.

    Expanded from the protocol some days ahead in the participant's time zone; the unique
    (participant, slot) key makes expansion idempotent. Workers claim due rows with a lease.
    """

    __tablename__ = "scheduled_items"
    __table_args__ = (
        sa.UniqueConstraint("participant_id", "slot_key"),
        sa.Index("ix_scheduled_items_due", "status", "due_at"),
        # Fired EMA prompts still waiting for an answer: the expiry sweep reads only these.
        sa.Index(
            "ix_scheduled_items_unanswered",
            "expires_at",
            sqlite_where=sa.text(UNANSWERED),
            postgresql_where=sa.text(UNANSWERED),
        ),
    )

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    protocol_version: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(24))
    # e.g. "ema:morning:2026-03-02:0" or "dp:late_morning:2026-03-02:0" or "trigger:…".
    slot_key: Mapped[str] = mapped_column(sa.String(160))
    # The protocol's EMA schedule id or decision point id.
    source_id: Mapped[str] = mapped_column(sa.String(64))
    questionnaire_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Per participant and kind, 0, 1, 2 … in due order (the MRT decision index).
    sequence: Mapped[int | None]
    due_at: Mapped[datetime]
    # EMA prompts: answers after this are late. Decision points: fire no later than this.
    expires_at: Mapped[datetime | None]
    # The reproducible random draw of a random-window slot (seed parts, minute drawn); for a
    # slot that slots of its schedule were merged into by a DST change, "merged": [{slot_key,
    # local_time}] as well.
    draw: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(sa.String(24), default=ItemStatus.planned)
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(120))
    lease_expires_at: Mapped[datetime | None]
    # EMA prompts: when the participant answered (reminders stop; the app stops showing it).
    answered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScheduleHorizon(Base):
    """How far ahead a participant's schedule is materialized: every slot due before
    ``planned_until`` has its row. The worker extends horizons that run short."""

    __tablename__ = "schedule_horizons"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    planned_until: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
