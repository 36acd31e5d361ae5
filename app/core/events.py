"""Participant events inside one transaction: new data that other domains may react to.

Ingestion publishes (an EMA was submitted, a wearable summary arrived, an exercise was
completed, a prompt was opened); scheduling subscribes (event-triggered EMA prompts and
decision points become due rows). Listeners run synchronously in the publisher's session,
so the reaction is committed together with the data, or not at all; they must only write
rows (durable work), never call out over the network.
"""

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.protocols.timing import Event


@dataclass(frozen=True)
class ParticipantEvent:
    kind: Event
    participant_id: uuid.UUID
    study_id: uuid.UUID
    occurred_at: datetime
    # What the event is about: the EMA response, wearable summary or notification id.
    reference_id: uuid.UUID | None = None
    # For ema_submitted: the questionnaire answered (EventTrigger.questionnaire filters on it).
    questionnaire: str | None = None


Listener = Callable[[Session, Clock, ParticipantEvent], None]

_listeners: dict[Event, list[Listener]] = defaultdict(list)


def subscribe(kind: Event, listener: Listener) -> None:
    if listener not in _listeners[kind]:
        _listeners[kind].append(listener)


def unsubscribe(kind: Event, listener: Listener) -> None:
    if listener in _listeners[kind]:
        _listeners[kind].remove(listener)


def publish(session: Session, clock: Clock, event: ParticipantEvent) -> None:
    for listener in _listeners[event.kind]:
        listener(session, clock, event)
