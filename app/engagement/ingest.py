"""Accepting a batch of engagement events: what the participant did with prompts and exercises.

Every event is tied to what it refers to: prompt events to the notification (or EMA
prompt), exercise events to the exercise, a helpfulness rating to the exercise or the
notification. Referenced notifications and prompts must be the participant's own.
Completed exercises publish ``exercise_completed``; opened intervention prompts publish
``prompt_opened``, in the same transaction.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.batches import (
    ItemProblem,
    ItemResult,
    ItemStatus,
    TimeBounds,
    chunks,
    insert_new,
    rejected,
)
from app.core.clock import Clock
from app.core.events import ParticipantEvent, publish
from app.core.ids import new_id
from app.engagement.models import EngagementEvent, EngagementKind
from app.notifications.models import Notification, NotificationKind
from app.participants.models import Participant
from app.protocols.timing import Event
from app.scheduling.models import ItemKind, ScheduledItem

PROMPT_KINDS = frozenset(
    {EngagementKind.prompt_received, EngagementKind.prompt_opened, EngagementKind.prompt_dismissed}
)
EXERCISE_KINDS = frozenset({EngagementKind.exercise_started, EngagementKind.exercise_completed})
T = TypeVar("T", Notification, ScheduledItem)

# Helpfulness ratings are whole numbers on this scale (0 = not at all helpful).
RATING_RANGE = (0, 10)


@dataclass(frozen=True)
class EventInput:
    index: int
    client_id: str
    kind: EngagementKind
    occurred_at: datetime
    notification_id: uuid.UUID | None = None
    prompt_id: uuid.UUID | None = None
    exercise_id: str | None = None
    duration_seconds: float | None = None
    rating: int | None = None


def record_events(
    session: Session,
    clock: Clock,
    participant: Participant,
    inputs: Sequence[EventInput],
    *,
    skew: timedelta,
) -> list[ItemResult]:
    """Judge and store a batch; the caller commits. Results come back in index order."""
    now = clock.now()
    bounds = TimeBounds.for_participant(participant, now, skew)
    existing = _existing_ids(session, participant, [e.client_id for e in inputs])
    notifications = _owned(session, Notification, participant, {e.notification_id for e in inputs})
    prompts = _owned(session, ScheduledItem, participant, {e.prompt_id for e in inputs})
    results: dict[int, ItemResult] = {}
    accepted: dict[str, tuple[EventInput, uuid.UUID]] = {}
    for event in inputs:
        known = existing.get(event.client_id) or (
            accepted[event.client_id][1] if event.client_id in accepted else None
        )
        if known is not None:
            results[event.index] = ItemResult(
                event.index, event.client_id, ItemStatus.duplicate, id=known
            )
            continue
        problems = _problems(event, bounds, notifications, prompts)
        if problems:
            results[event.index] = rejected(event.index, event.client_id, problems)
        else:
            accepted[event.client_id] = (event, new_id())

    stored = _insert(session, participant, now, list(accepted.values()))
    raced = [client_id for client_id in accepted if client_id not in stored]
    raced_ids = _existing_ids(session, participant, raced) if raced else {}
    for client_id, (event, id_) in accepted.items():
        if client_id in stored:
            results[event.index] = ItemResult(event.index, client_id, ItemStatus.accepted, id=id_)
            _publish(session, clock, participant, event, id_, notifications)
        else:
            results[event.index] = ItemResult(
                event.index, client_id, ItemStatus.duplicate, id=raced_ids[client_id]
            )
    return [results[e.index] for e in inputs]


def _problems(
    event: EventInput,
    bounds: TimeBounds,
    notifications: dict[uuid.UUID, Notification],
    prompts: dict[uuid.UUID, ScheduledItem],
) -> list[ItemProblem]:
    problems = []
    time_problem = bounds.problem("occurred_at", event.occurred_at)
    if time_problem is not None:
        problems.append(time_problem)
    if event.notification_id is not None and event.notification_id not in notifications:
        problems.append(
            ItemProblem(
                "notification_id", f"the participant has no notification {event.notification_id}"
            )
        )
    if event.prompt_id is not None:
        prompt = prompts.get(event.prompt_id)
        if prompt is None or prompt.kind != ItemKind.ema_prompt:
            problems.append(
                ItemProblem("prompt_id", f"the participant has no EMA prompt {event.prompt_id}")
            )
    problems += _kind_problems(event)
    return problems


def _kind_problems(event: EventInput) -> list[ItemProblem]:
    """What each kind of event must say to be useful for analysis."""
    kind = event.kind
    problems = []
    if kind in PROMPT_KINDS and event.notification_id is None and event.prompt_id is None:
        problems.append(
            ItemProblem("notification_id", f"a {kind} event names its notification_id or prompt_id")
        )
    if kind in EXERCISE_KINDS and not event.exercise_id:
        problems.append(ItemProblem("exercise_id", f"a {kind} event names its exercise_id"))
    if kind is EngagementKind.exercise_completed and event.duration_seconds is None:
        problems.append(
            ItemProblem("duration_seconds", "exercise_completed needs the exercise's duration")
        )
    if kind is EngagementKind.helpfulness_rated:
        low, high = RATING_RANGE
        if event.rating is None or not low <= event.rating <= high:
            problems.append(
                ItemProblem(
                    "rating", f"helpfulness_rated needs a whole-number rating {low}..{high}"
                )
            )
        if not event.exercise_id and event.notification_id is None:
            problems.append(
                ItemProblem("exercise_id", "a rating names the exercise_id or the notification_id")
            )
    elif event.rating is not None:
        problems.append(ItemProblem("rating", "only helpfulness_rated events carry a rating"))
    return problems


def _publish(
    session: Session,
    clock: Clock,
    participant: Participant,
    event: EventInput,
    event_id: uuid.UUID,
    notifications: dict[uuid.UUID, Notification],
) -> None:
    kind: Event | None = None
    reference = event_id
    if event.kind is EngagementKind.exercise_completed:
        kind = Event.exercise_completed
    elif event.kind is EngagementKind.prompt_opened and event.notification_id is not None:
        notification = notifications[event.notification_id]
        # prompt_opened triggers concern intervention prompts, not EMA prompt pushes.
        if notification.kind == NotificationKind.intervention:
            kind, reference = Event.prompt_opened, notification.id
    if kind is not None:
        publish(
            session,
            clock,
            ParticipantEvent(
                kind=kind,
                participant_id=participant.id,
                study_id=participant.study_id,
                occurred_at=event.occurred_at.astimezone(UTC),
                reference_id=reference,
            ),
        )


def _existing_ids(
    session: Session, participant: Participant, client_ids: list[str]
) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for chunk in chunks(sorted(set(client_ids))):
        rows = session.execute(
            sa.select(EngagementEvent.client_id, EngagementEvent.id).where(
                EngagementEvent.participant_id == participant.id,
                EngagementEvent.client_id.in_(chunk),
            )
        )
        found.update({row[0]: row[1] for row in rows})
    return found


def _owned(
    session: Session, model: type[T], participant: Participant, ids: set[uuid.UUID | None]
) -> dict[uuid.UUID, T]:
    wanted = sorted(i for i in ids if i is not None)
    found: dict[uuid.UUID, T] = {}
    for chunk in chunks(wanted):
        rows = session.scalars(
            sa.select(model).where(model.participant_id == participant.id, model.id.in_(chunk))
        )
        found.update({row.id: row for row in rows})
    return found


def _insert(
    session: Session,
    participant: Participant,
    now: datetime,
    accepted: list[tuple[EventInput, uuid.UUID]],
) -> set[str]:
    """Insert the events; returns the client ids actually inserted."""
    rows = [
        {
            "id": id_,
            "participant_id": participant.id,
            "study_id": participant.study_id,
            "client_id": event.client_id,
            "kind": str(event.kind),
            "notification_id": event.notification_id,
            "prompt_id": event.prompt_id,
            "exercise_id": event.exercise_id,
            "occurred_at": event.occurred_at,
            "received_at": now,
            "duration_seconds": event.duration_seconds,
            "rating": event.rating,
        }
        # In key order, so concurrent batches lock rows in the same order.
        for event, id_ in sorted(accepted, key=lambda pair: pair[0].client_id)
    ]
    stored = insert_new(session, EngagementEvent, rows, ["participant_id", "client_id"])
    return {event.client_id for event, id_ in accepted if id_ in stored}
