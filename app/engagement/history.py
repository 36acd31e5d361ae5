"""Reading engagement events back: the app's history view and staff review."""

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.pagination import keyset_page
from app.engagement.models import EngagementEvent
from app.participants.models import Participant


def list_events(
    session: Session,
    participant: Participant,
    *,
    after: uuid.UUID | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
) -> tuple[Sequence[EngagementEvent], uuid.UUID | None]:
    """Events in the order they were received; ``since``/``until`` bound when they occurred."""
    stmt = sa.select(EngagementEvent).where(EngagementEvent.participant_id == participant.id)
    if since is not None:
        stmt = stmt.where(EngagementEvent.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(EngagementEvent.occurred_at < until)
    if kind is not None:
        stmt = stmt.where(EngagementEvent.kind == kind)
    return keyset_page(session, stmt, EngagementEvent.id, after=after, limit=limit)
