"""A participant's planned schedule: what is due in the coming days, for a coordinator to
check times and time zones before and during a pilot."""

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.scheduling.models import ItemStatus, ScheduledItem


def upcoming(
    session: Session, participant_id: uuid.UUID, start: datetime, end: datetime
) -> Sequence[ScheduledItem]:
    """Rows still to fire, due in ``[start, end)``, in due order."""
    return session.scalars(
        sa.select(ScheduledItem)
        .where(
            ScheduledItem.participant_id == participant_id,
            ScheduledItem.status.in_([ItemStatus.planned, ItemStatus.claimed]),
            ScheduledItem.due_at >= start,
            ScheduledItem.due_at < end,
        )
        .order_by(ScheduledItem.due_at, ScheduledItem.slot_key)
    ).all()
