"""The burden factor at the scheduler: while a fatigue episode is open (the participant's
``burden_factor`` below 1, app/monitoring/fatigue.py) prompts of ``droppable`` EMA
schedules are thinned to that share, and every prompt's reminders are scaled by it.

Thinning is a reproducible draw per (participant, slot): the same slot is always kept or
always left out under one factor, and a thinned prompt is recorded as cancelled with the
reason (it was never offered, so it does not count against EMA completion).
"""

import hashlib
import math
import uuid

from app.protocols.document import Protocol
from app.protocols.timing import EmaSchedule, ReminderPolicy
from app.scheduling.models import ScheduledItem


def thinning_reason(item: ScheduledItem, protocol: Protocol | None, factor: float) -> str | None:
    """Why a droppable schedule's prompt is left out under ``factor``, or None."""
    if factor >= 1.0 or protocol is None:
        return None
    try:
        schedule = protocol.ema_schedule(item.source_id)
    except KeyError:
        return None
    if not schedule.droppable or not thinned_out(item.participant_id, item.slot_key, factor):
        return None
    return (
        f"fatigue response: droppable schedule {schedule.id} thinned to a share of {factor} "
        "while the fatigue episode is open"
    )


def thinned_out(participant_id: uuid.UUID, slot_key: str, factor: float) -> bool:
    """Whether the slot is left out: a draw in [0, 1) from (participant, slot) >= factor."""
    digest = hashlib.sha256(f"thin|{participant_id}|{slot_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 >= factor


def with_reminders_scaled(schedule: EmaSchedule, factor: float) -> EmaSchedule:
    """The schedule with floor(count x factor) reminders (unchanged at factor 1)."""
    if factor >= 1.0 or not schedule.reminders.count:
        return schedule
    reminders = ReminderPolicy(
        count=math.floor(schedule.reminders.count * factor),
        every_minutes=schedule.reminders.every_minutes,
    )
    return schedule.model_copy(update={"reminders": reminders})
