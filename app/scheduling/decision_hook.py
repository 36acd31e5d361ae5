"""The seam between the scheduler and the decision engine.

The scheduler claims due decision-point rows and hands them, in batches, to a decider.
The decider records one decision-log row per item (available or not) and returns, per
item, what to deliver or None. The scheduler then writes each delivery as an outbox
notification in the same transaction, so a decision and its push commit together.
"""

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.notifications.delivery import Delivery
from app.scheduling.models import ScheduledItem

DecideBatch = Callable[[Session, Clock, Sequence[ScheduledItem]], Sequence[Delivery | None]]
