"""Event-triggered EMA prompts and decision points: participant events become due rows.

Runs inside the publisher's transaction (see app.core.events), so the row commits with the
data that caused it. The slot key is derived from the event's reference id, so a replayed
event (the phone retrying an upload) never creates a second row.
"""

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core import events
from app.core.clock import Clock
from app.core.events import ParticipantEvent
from app.ema.models import EmaResponse
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.participants.models import Participant
from app.protocols.timing import Event, EventTrigger, Timing
from app.scheduling.models import ItemKind
from app.scheduling.planning import (
    TRIGGER_MARK,
    insert_items_once,
    is_schedulable,
    item_row,
    participant_zone,
    protocol_of,
    study_day_zero,
)
from app.scheduling.slots import Slot, expiry, kind_prefix, weekday_of


def _matches(trigger: EventTrigger, event: ParticipantEvent) -> bool:
    if trigger.event is not event.kind:
        return False
    return trigger.questionnaire is None or trigger.questionnaire == event.questionnaire


def on_participant_event(session: Session, clock: Clock, event: ParticipantEvent) -> None:
    participant = session.get(Participant, event.participant_id)
    if participant is None or not is_schedulable(participant):
        return
    protocol = protocol_of(session, participant)
    if protocol is None:
        return
    zone = participant_zone(participant)
    day_zero = study_day_zero(participant, zone)
    if day_zero is None:
        return
    local_day = event.occurred_at.astimezone(zone).date()
    study_day = (local_day - day_zero).days
    reference = str(event.reference_id) if event.reference_id else event.occurred_at.isoformat()
    now = clock.now()
    blocks: list[tuple[Timing, ItemKind]] = [
        *((s, ItemKind.ema_prompt) for s in protocol.ema_schedules),
        *((p, ItemKind.decision_point) for p in protocol.decision_points),
    ]
    rows = []
    for block, kind in blocks:
        if not block.is_active_on(study_day, weekday_of(local_day), protocol.study.last_day):
            continue
        for index, trigger in enumerate(block.triggers):
            if not _matches(trigger, event):
                continue
            due = event.occurred_at + timedelta(minutes=trigger.delay_minutes)
            key = f"{kind_prefix(kind)}{TRIGGER_MARK}{block.id}:{index}:{event.kind}:{reference}"
            slot = Slot(
                kind=kind,
                slot_key=key,
                source_id=block.id,
                questionnaire_id=getattr(block, "questionnaire", None),
                local_date=local_day,
                local_time=due.astimezone(zone).time(),
                due_at=due,
                expires_at=expiry(block, due),
                draw=None,
            )
            rows.append(item_row(participant, slot, now))
    insert_items_once(session, rows)
    if event.kind is Event.ema_submitted and event.reference_id is not None:
        cancel_reminders_for_response(session, event)


def cancel_reminders_for_response(session: Session, event: ParticipantEvent) -> None:
    """The prompt was answered: its reminders still in the outbox are no longer wanted."""
    prompt_id = session.scalar(
        sa.select(EmaResponse.prompt_id).where(EmaResponse.id == event.reference_id)
    )
    if prompt_id is None:
        return
    session.execute(
        sa.update(Notification)
        .where(
            Notification.scheduled_item_id == prompt_id,
            Notification.kind == NotificationKind.reminder,
            Notification.status == NotificationStatus.pending,
        )
        .values(status=NotificationStatus.cancelled, status_reason="prompt answered")
        .execution_options(synchronize_session=False)
    )


def subscribe_all() -> None:
    """Listen to every participant event kind (idempotent)."""
    for kind in Event:
        events.subscribe(kind, on_participant_event)
