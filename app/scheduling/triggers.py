"""Event-triggered EMA prompts and decision points: participant events become due rows.

Runs inside the publisher's transaction (see app.core.events), so the row commits with the
data that caused it. The slot key is derived from the event's reference id, so a replayed
event (the phone retrying an upload) never creates a second row.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.core import events
from app.core.clock import Clock
from app.core.events import ParticipantEvent
from app.notifications.lifecycle import cancel_reminders_of
from app.participants.models import Participant
from app.protocols.document import Protocol
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
    on_participant_events(session, clock, [event])


def on_participant_events(
    session: Session, clock: Clock, batch: Sequence[ParticipantEvent]
) -> None:
    """One batch's events (of one kind): each participant's protocol is read once for the
    batch, its rows inserted at once, and the answered prompts' reminders cancelled in one
    statement, however many events the batch has."""
    now = clock.now()
    by_participant: dict[uuid.UUID, list[ParticipantEvent]] = {}
    for event in batch:
        by_participant.setdefault(event.participant_id, []).append(event)
    rows = []
    for participant_id, group in by_participant.items():
        participant = session.get(Participant, participant_id)
        if participant is None or not is_schedulable(participant):
            continue
        protocol = protocol_of(session, participant)
        if protocol is None:
            continue
        rows += _triggered_rows(participant, protocol, group, now)
    insert_items_once(session, rows)
    answered = [e.prompt_id for e in batch if e.prompt_id is not None]
    cancel_reminders_of(session, answered)


# A schedule or decision point, the kind of row it makes, and one of its event triggers
# (with its index among the block's triggers, part of the slot key).
_Candidate = tuple[Timing, ItemKind, int, EventTrigger]


def _candidates(protocol: Protocol, kind: Event) -> list[_Candidate]:
    """The protocol's triggers on events of this kind, in block order, then trigger order."""
    blocks: list[tuple[Timing, ItemKind]] = [
        *((s, ItemKind.ema_prompt) for s in protocol.ema_schedules),
        *((p, ItemKind.decision_point) for p in protocol.decision_points),
    ]
    return [
        (block, item_kind, index, trigger)
        for block, item_kind in blocks
        for index, trigger in enumerate(block.triggers)
        if trigger.event is kind
    ]


def _triggered_rows(
    participant: Participant,
    protocol: Protocol,
    events: Sequence[ParticipantEvent],
    now: datetime,
) -> list[dict[str, object]]:
    """The rows one participant's events trigger, event by event (the protocol's triggers
    are looked up once per event kind, not once per event)."""
    by_kind: dict[Event, list[_Candidate]] = {}
    for event in events:
        if event.kind not in by_kind:
            by_kind[event.kind] = _candidates(protocol, event.kind)
    if not any(by_kind.values()):
        return []
    zone = participant_zone(participant)
    day_zero = study_day_zero(participant, zone)
    if day_zero is None:
        return []
    rows = []
    for event in events:
        candidates = [c for c in by_kind[event.kind] if _matches(c[3], event)]
        if not candidates:
            continue
        local_day = event.occurred_at.astimezone(zone).date()
        study_day = (local_day - day_zero).days
        weekday = weekday_of(local_day)
        reference = str(event.reference_id) if event.reference_id else event.occurred_at.isoformat()
        for block, kind, index, trigger in candidates:
            if not block.is_active_on(study_day, weekday, protocol.study.last_day):
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
    return rows


def subscribe_all() -> None:
    """Listen to every participant event kind (idempotent)."""
    for kind in Event:
        events.subscribe_batch(kind, on_participant_events)
