"""The outbox's state changes made on behalf of other packages, and the collapse key.

Only app.notifications writes the notifications table: scheduling says what happened (a
participant's schedule was cancelled, prompts were answered) and these functions settle the
pushes still waiting. Rows already claimed by a sender are left to it: its prepare step
re-checks the participant and the prompt before pushing.
"""

import functools
import uuid
from collections.abc import Collection
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.notifications.models import Notification, NotificationKind, NotificationStatus


def prompt_collapse_key(scheduled_item_id: uuid.UUID) -> str:
    # A reminder replaces the prompt (or the previous reminder) on the phone.
    return f"prompt-{scheduled_item_id}"


def cancel_pending_for(session: Session, participant_id: uuid.UUID, reason: str) -> None:
    """Cancel every unsent push of the participant."""
    session.execute(
        sa.update(Notification)
        .where(
            Notification.participant_id == participant_id,
            Notification.status == NotificationStatus.pending,
        )
        .values(status=NotificationStatus.cancelled, status_reason=reason)
        .execution_options(synchronize_session=False)
    )


def cancel_reminders_of(session: Session, prompt_ids: Collection[uuid.UUID]) -> None:
    """These prompts were answered: their reminders still in the outbox are no longer
    wanted. One statement for the batch, none when it answered no prompt."""
    if not prompt_ids:
        return
    session.execute(_cancel_reminders_statement(), {"prompt_ids": list(prompt_ids)})


@functools.cache
def _cancel_reminders_statement() -> sa.Update:
    # Built once, of the Core table (every EMA answer runs it); at first use, when the
    # foreign key has given scheduled_item_id its type.
    table = cast(sa.Table, Notification.__table__)
    n = table.c
    return (
        sa.update(table)
        .where(
            n.scheduled_item_id.in_(sa.bindparam("prompt_ids", expanding=True)),
            n.kind == NotificationKind.reminder,
            n.status == NotificationStatus.pending,
        )
        .values(status=NotificationStatus.cancelled, status_reason="prompt answered")
    )
