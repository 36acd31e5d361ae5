"""Fired EMA prompts seen from outside scheduling: which are still open (the pull fallback
shows them), and which have closed (the sender drops their reminders)."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.notifications.models import Notification
from app.notifications.pending import prompt_pushes
from app.participants.models import Participant
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem


@dataclass(frozen=True)
class PendingPrompt:
    item: ScheduledItem
    notification: Notification | None


def pending_prompts(
    session: Session, participant: Participant, now: datetime
) -> list[PendingPrompt]:
    """Fired EMA prompts that are unanswered and not expired, oldest first, with their push."""
    items = session.scalars(
        sa.select(ScheduledItem)
        .where(
            ScheduledItem.participant_id == participant.id,
            ScheduledItem.kind == ItemKind.ema_prompt,
            ScheduledItem.status == ItemStatus.done,
            ScheduledItem.answered_at.is_(None),
            ScheduledItem.due_at <= now,
            sa.or_(ScheduledItem.expires_at.is_(None), ScheduledItem.expires_at > now),
        )
        .order_by(ScheduledItem.due_at)
    ).all()
    pushes = prompt_pushes(session, [i.id for i in items])
    return [PendingPrompt(item, pushes.get(item.id)) for item in items]


def closed_prompts(session: Session, item_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these items that were answered or are no longer fired (an unknown id is not
    closed): their reminders are no longer wanted."""
    if not item_ids:
        return set()
    return set(
        session.scalars(
            sa.select(ScheduledItem.id).where(
                ScheduledItem.id.in_(item_ids),
                sa.or_(
                    ScheduledItem.answered_at.is_not(None),
                    ScheduledItem.status != ItemStatus.done,
                ),
            )
        )
    )
