"""Reading wearable summaries back: the app's history view and staff review."""

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.pagination import keyset_page
from app.participants.models import Participant
from app.sensing.models import WearableSummary


def list_summaries(
    session: Session,
    participant: Participant,
    *,
    after: uuid.UUID | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    metric: str | None = None,
) -> tuple[Sequence[WearableSummary], uuid.UUID | None]:
    """Summaries in the order they were first received; ``since``/``until`` bound the period end."""
    stmt = sa.select(WearableSummary).where(WearableSummary.participant_id == participant.id)
    if since is not None:
        stmt = stmt.where(WearableSummary.end_at >= since)
    if until is not None:
        stmt = stmt.where(WearableSummary.end_at < until)
    if metric is not None:
        stmt = stmt.where(WearableSummary.metric == metric)
    return keyset_page(session, stmt, WearableSummary.id, after=after, limit=limit)
