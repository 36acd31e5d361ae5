"""The seam between the scheduler and the decision engine.

The scheduler claims due decision-point rows and hands them, in batches, to a decider.
The decider records one decision-log row per item (available or not) and returns, per
item, what to deliver or None. The scheduler then writes each delivery as an outbox
notification in the same transaction, so a decision and its push commit together.
"""

import logging
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.notifications.delivery import Delivery
from app.scheduling.models import ScheduledItem

logger = logging.getLogger(__name__)


DecideBatch = Callable[[Session, Clock, Sequence[ScheduledItem]], Sequence[Delivery | None]]


def decide_nothing(
    session: Session, clock: Clock, items: Sequence[ScheduledItem]
) -> list[Delivery | None]:
    """Decides "nothing" every time: the Worker's default when built without a decider
    (scheduler tests); services use app.decision_rules.engine.decide_batch."""
    for item in items:
        logger.info(
            "placeholder decider: nothing for participant %s at %s (%s)",
            item.participant_id,
            item.due_at.isoformat(),
            item.source_id,
        )
    return [None for _ in items]
