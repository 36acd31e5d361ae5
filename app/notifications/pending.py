"""What the app should show now, for the pull fallback: pushes get lost, so the app asks."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.participants.models import Participant
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem

# An intervention whose push failed (dead token) is exactly what the pull must still offer.
_SHOWABLE = (
    NotificationStatus.pending,
    NotificationStatus.sending,
    NotificationStatus.sent,
    NotificationStatus.failed,
)


@dataclass(frozen=True)
class PendingPrompt:
    item: ScheduledItem
    notification: Notification | None


def pending_prompts(
    session: Session, participant: Participant, now: datetime
) -> list[PendingPrompt]:
    """Fired EMA prompts that are unanswered and not expired, oldest first."""
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
    pushes = {
        n.scheduled_item_id: n
        for n in session.scalars(
            sa.select(Notification).where(
                Notification.scheduled_item_id.in_([i.id for i in items]),
                Notification.kind == NotificationKind.ema_prompt,
            )
        )
    }
    return [PendingPrompt(item, pushes.get(item.id)) for item in items]


def pending_interventions(
    session: Session, participant: Participant, now: datetime
) -> Sequence[Notification]:
    """Interventions decided for the participant that are still valid, newest first."""
    return session.scalars(
        sa.select(Notification)
        .where(
            Notification.participant_id == participant.id,
            Notification.kind == NotificationKind.intervention,
            Notification.status.in_(_SHOWABLE),
            Notification.send_at <= now,
            sa.or_(Notification.expires_at.is_(None), Notification.expires_at > now),
        )
        .order_by(Notification.created_at.desc())
    ).all()
