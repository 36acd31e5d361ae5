"""The outbox's one definition of "intervention prompts sent in a window": intervention
notifications created within it, not cancelled. The decision engine's burden limits and
the ``notifications`` tailoring source both read it."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.notifications.models import Notification, NotificationKind, NotificationStatus


def intervention_prompts(session: Session, bounds: sa.Subquery) -> list[tuple[int, datetime]]:
    """(bounds key, created_at) of every intervention prompt inside a window of ``bounds``
    (a bounds table: key ``k``, participant ``pid``, start ``s`` and end ``e``, inclusive)."""
    n = Notification
    joined = bounds.join(
        n,
        sa.and_(
            n.participant_id == bounds.c.pid,
            n.kind == NotificationKind.intervention,
            n.status != NotificationStatus.cancelled,
            n.created_at >= bounds.c.s,
            n.created_at <= bounds.c.e,
        ),
    )
    rows = session.execute(sa.select(bounds.c.k, n.created_at).select_from(joined)).all()
    return [(k, created_at) for k, created_at in rows]
