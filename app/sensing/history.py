"""Reading wearable summaries back: the app's history view and staff review."""

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.core.pagination import PeriodPage, history_page
from app.participants.models import Participant
from app.sensing.models import WearableSummary


def list_summaries(
    session: Session, participant: Participant, page: PeriodPage, *, metric: str | None = None
) -> tuple[Sequence[WearableSummary], uuid.UUID | None]:
    """Summaries in the order they were first received; the page's bounds are on the end of
    the summarized period."""
    w = WearableSummary
    only = [w.metric == metric] if metric is not None else []
    return history_page(session, w, participant.id, w.end_at, page, *only)
