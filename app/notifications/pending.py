"""What the app should show now, for the pull fallback: pushes get lost, so the app asks."""

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.participants.models import Participant

# An intervention whose push failed (dead token) is exactly what the pull must still offer.
_SHOWABLE = (
    NotificationStatus.pending,
    NotificationStatus.sending,
    NotificationStatus.sent,
    NotificationStatus.failed,
)


def prompt_pushes(
    session: Session, scheduled_item_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Notification]:
    """The push of each of these EMA prompts that has one, by scheduled item id."""
    return {
        n.scheduled_item_id: n
        for n in session.scalars(
            sa.select(Notification).where(
                Notification.scheduled_item_id.in_(scheduled_item_ids),
                Notification.kind == NotificationKind.ema_prompt,
            )
        )
        if n.scheduled_item_id is not None
    }


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
