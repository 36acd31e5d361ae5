"""Reading engagement events back: the app's history view and staff review."""

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.core.pagination import PeriodPage, history_page
from app.engagement.models import EngagementEvent
from app.participants.models import Participant


def list_events(
    session: Session, participant: Participant, page: PeriodPage, *, kind: str | None = None
) -> tuple[Sequence[EngagementEvent], uuid.UUID | None]:
    """Events in the order they were received; the page's bounds are on when they occurred."""
    e = EngagementEvent
    only = [e.kind == kind] if kind is not None else []
    return history_page(session, e, participant.id, e.occurred_at, page, *only)
