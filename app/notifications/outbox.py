"""Writing pushes into the outbox, in the caller's transaction.

A notification row is the push: the sender delivers it later. Writing it in the same
transaction as the prompt or decision that causes it means both commit, or neither.
Rows are built as plain values and written with one multi-row insert per batch: a burst of
decision points writes thousands at once.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.bulk_inserts import insert_rows
from app.core.ids import new_id
from app.notifications.delivery import Delivery
from app.notifications.lifecycle import prompt_collapse_key
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.protocols.questionnaires import Questionnaire
from app.protocols.timing import EmaSchedule

# A just-in-time intervention is stale after this long: it is not pushed later, and the
# pull fallback stops offering it.
INTERVENTION_VALIDITY = timedelta(minutes=60)


@dataclass(frozen=True, slots=True)
class Origin:
    """The scheduled EMA prompt or decision point a push comes from, as its scheduler
    passes it in."""

    scheduled_item_id: uuid.UUID
    participant_id: uuid.UUID
    study_id: uuid.UUID
    questionnaire_id: str | None
    due_at: datetime
    expires_at: datetime | None


def prompt_link(scheduled_item_id: uuid.UUID) -> str:
    return f"kairos://ema/{scheduled_item_id}"


NotificationValues = dict[str, Any]


def write_outbox(session: Session, rows: Sequence[NotificationValues]) -> list[uuid.UUID]:
    """Insert the rows; returns their ids."""
    insert_rows(session, cast(sa.Table, Notification.__table__), rows)
    return [row["id"] for row in rows]


def prompt_notifications(
    item: Origin,
    schedule: EmaSchedule | None,
    questionnaire: Questionnaire | None,
    now: datetime,
) -> list[NotificationValues]:
    """The prompt's push now, and its reminders at their times before the prompt expires."""
    title = questionnaire.title if questionnaire is not None else "Check-in"
    count = len(questionnaire.items) if questionnaire is not None else None
    body = (
        f"A short check-in is waiting for you ({count} question{'s' if count != 1 else ''})."
        if count
        else "A short check-in is waiting for you."
    )
    data = {
        "scheduled_item_id": str(item.scheduled_item_id),
        "questionnaire_id": item.questionnaire_id or "",
        "collapse_key": prompt_collapse_key(item.scheduled_item_id),
    }
    rows = [
        _notification(item, NotificationKind.ema_prompt, title, body, data, send_at=now, now=now)
    ]
    if schedule is not None and item.expires_at is not None:
        policy = schedule.reminders
        for k in range(1, policy.count + 1):
            send_at = item.due_at + timedelta(minutes=k * policy.every_minutes)
            if send_at >= item.expires_at:
                break
            rows.append(
                _notification(
                    item,
                    NotificationKind.reminder,
                    f"Reminder: {title}",
                    "Your check-in is still open. It only takes a minute.",
                    {**data, "reminder": str(k)},
                    send_at=max(send_at, now),
                    now=now,
                )
            )
    return rows


def _notification(
    item: Origin,
    kind: NotificationKind,
    title: str,
    body: str,
    data: dict[str, str],
    *,
    send_at: datetime,
    now: datetime,
) -> NotificationValues:
    return _values(
        item,
        kind=kind,
        title=title,
        body=body,
        deep_link=prompt_link(item.scheduled_item_id),
        data=data,
        created_at=now,
        send_at=send_at,
        expires_at=item.expires_at,
    )


def intervention_notification(
    item: Origin, delivery: Delivery, now: datetime
) -> NotificationValues:
    return _values(
        item,
        kind=NotificationKind.intervention,
        decision_id=delivery.decision_id,
        option_id=delivery.option_id,
        title=delivery.title,
        body=delivery.body,
        deep_link=delivery.deep_link,
        data=dict(delivery.data),
        created_at=now,
        send_at=now,
        expires_at=now + INTERVENTION_VALIDITY,
    )


# A crisis line stays worth showing for a day; after that the care team has taken over.
SAFETY_RESPONSE_VALIDITY = timedelta(hours=24)


def safety_response_notification(
    *,
    participant_id: uuid.UUID,
    study_id: uuid.UUID,
    alert_id: uuid.UUID,
    text: str,
    link: str | None,
    now: datetime,
) -> NotificationValues:
    """The push of an escalation's safety response, due at once."""
    return {
        "id": new_id(),
        "participant_id": participant_id,
        "study_id": study_id,
        "scheduled_item_id": None,
        "decision_id": None,
        "option_id": None,
        "status": NotificationStatus.pending,
        "attempts": 0,
        "kind": NotificationKind.safety_response,
        "title": "Support is available now",
        "body": text,
        "deep_link": link,
        "data": {"alert_id": str(alert_id)},
        "created_at": now,
        "send_at": now,
        "expires_at": now + SAFETY_RESPONSE_VALIDITY,
    }


def _values(item: Origin, **values: Any) -> NotificationValues:
    # Every row has every column, so that one insert statement takes a whole batch.
    return {
        "id": new_id(),
        "participant_id": item.participant_id,
        "study_id": item.study_id,
        "scheduled_item_id": item.scheduled_item_id,
        "decision_id": None,
        "option_id": None,
        "status": NotificationStatus.pending,
        "attempts": 0,
    } | values
