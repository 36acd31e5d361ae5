"""Participant events inside one transaction: new data that other domains may react to.

Ingestion publishes (an EMA was submitted, a wearable summary arrived, an exercise was
completed, a prompt was opened); scheduling subscribes (event-triggered EMA prompts and
decision points become due rows). Listeners run synchronously in the publisher's session,
so the reaction is committed together with the data, or not at all; they must only write
rows (durable work), never call out over the network.

A batch from the phone publishes its events together (``publish_all``). A listener may
subscribe to single events or to batches: a batch listener gets all of a batch's events of
its kind in one call, so it can look up what it needs once per batch instead of once per
event (a batch of 20 EMA responses is 20 events).
"""

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.core.event_kinds import Event


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
    # For ema_submitted: the prompt answered, if any (its pending reminders are not wanted).
    prompt_id: uuid.UUID | None = None


Listener = Callable[[Session, Clock, ParticipantEvent], None]
# Receives the events of one kind from one batch, in the order they were published.
BatchListener = Callable[[Session, Clock, Sequence[ParticipantEvent]], None]

_listeners: dict[Event, list[Listener]] = defaultdict(list)
_batch_listeners: dict[Event, list[BatchListener]] = defaultdict(list)


def subscribe(kind: Event, listener: Listener) -> None:
    if listener not in _listeners[kind]:
        _listeners[kind].append(listener)


def unsubscribe(kind: Event, listener: Listener) -> None:
    if listener in _listeners[kind]:
        _listeners[kind].remove(listener)


def subscribe_batch(kind: Event, listener: BatchListener) -> None:
    if listener not in _batch_listeners[kind]:
        _batch_listeners[kind].append(listener)


def unsubscribe_batch(kind: Event, listener: BatchListener) -> None:
    if listener in _batch_listeners[kind]:
        _batch_listeners[kind].remove(listener)


def publish(session: Session, clock: Clock, event: ParticipantEvent) -> None:
    publish_all(session, clock, [event])


def publish_all(session: Session, clock: Clock, events: Sequence[ParticipantEvent]) -> None:
    """Publish a batch's events: single-event listeners get them one by one, in order;
    batch listeners get each kind's events in one call."""
    by_kind: dict[Event, list[ParticipantEvent]] = defaultdict(list)
    for event in events:
        by_kind[event.kind].append(event)
        for listener in _listeners[event.kind]:
            listener(session, clock, event)
    for kind, group in by_kind.items():
        for batch_listener in _batch_listeners[kind]:
            batch_listener(session, clock, group)
