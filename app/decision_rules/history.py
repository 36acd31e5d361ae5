"""A participant's decision history with what became of each decision: the notification
it created, its delivery status, engagement with it, and the proximal outcomes."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.pagination import keyset_page
from app.decision_rules.models import Decision
from app.decision_rules.outcomes import proximal_outcomes
from app.engagement.models import EngagementEvent
from app.notifications.models import Notification
from app.participants.models import Participant


@dataclass(frozen=True)
class EngagementSeen:
    kind: str
    occurred_at: datetime


@dataclass
class DecisionRecord:
    decision: Decision
    notification_id: uuid.UUID | None = None
    delivery_status: str | None = None
    sent_at: datetime | None = None
    engagement: list[EngagementSeen] = field(default_factory=list)
    outcomes: dict[str, Any] = field(default_factory=dict)


def decision_history(
    session: Session,
    participant: Participant,
    *,
    now: datetime,
    after: uuid.UUID | None,
    limit: int,
) -> tuple[list[DecisionRecord], uuid.UUID | None]:
    """One page of the participant's decisions, oldest first."""
    stmt = sa.select(Decision).where(Decision.participant_id == participant.id)
    decisions, next_cursor = keyset_page(session, stmt, Decision.id, after=after, limit=limit)
    return records(session, decisions, now=now), next_cursor


def records(
    session: Session, decisions: Sequence[Decision], *, now: datetime
) -> list[DecisionRecord]:
    """Decisions joined with their notifications, engagement and outcomes."""
    result = [DecisionRecord(d) for d in decisions]
    if not decisions:
        return result
    ids = [d.id for d in decisions]
    notifications = {
        n.decision_id: n
        for n in session.scalars(sa.select(Notification).where(Notification.decision_id.in_(ids)))
    }
    events: dict[uuid.UUID, list[EngagementSeen]] = defaultdict(list)
    notification_ids = [n.id for n in notifications.values()]
    if notification_ids:
        for event in session.scalars(
            sa.select(EngagementEvent)
            .where(EngagementEvent.notification_id.in_(notification_ids))
            .order_by(EngagementEvent.occurred_at)
        ):
            assert event.notification_id is not None  # noqa: S101
            events[event.notification_id].append(EngagementSeen(event.kind, event.occurred_at))
    outcomes = proximal_outcomes(session, decisions, now=now)
    for record, values in zip(result, outcomes, strict=True):
        notification = notifications.get(record.decision.id)
        if notification is not None:
            record.notification_id = notification.id
            record.delivery_status = notification.status
            record.sent_at = notification.sent_at
            record.engagement = events.get(notification.id, [])
        record.outcomes = values
    return result
