"""app.notifications owns its table: rows built from what scheduling passes in, one collapse
key, and the sender asking scheduling (through a function it is given) whether a prompt
closed."""

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.notifications.delivery import Delivery
from app.notifications.lifecycle import prompt_collapse_key
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.notifications.outbox import (
    INTERVENTION_VALIDITY,
    Origin,
    intervention_notification,
    prompt_link,
    prompt_notifications,
)
from app.notifications.providers import LoggingProvider
from app.notifications.sender import SendPolicy, send_batch
from app.protocols.timing import EmaSchedule
from app.scheduling.fired_prompts import closed_prompts
from app.scheduling.models import ItemKind, ScheduledItem
from tests.conftest import World
from tests.support.protocols import protocol_yaml
from tests.support.scheduling import add_device, enrolled, items, worker

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def origin(expires_at: datetime | None = NOW + timedelta(minutes=50)) -> Origin:
    return Origin(
        scheduled_item_id=uuid.uuid4(),
        participant_id=uuid.uuid4(),
        study_id=uuid.uuid4(),
        questionnaire_id="daily",
        due_at=NOW,
        expires_at=expires_at,
    )


def schedule(count: int, every_minutes: int) -> EmaSchedule:
    return EmaSchedule.model_validate(
        {
            "id": "evening",
            "questionnaire": "daily",
            "times": ["20:00"],
            "reminders": {"count": count, "every_minutes": every_minutes},
        }
    )


def test_a_prompt_and_its_reminders_share_one_collapse_key_and_stop_before_expiry() -> None:
    o = origin()
    rows = prompt_notifications(o, schedule(count=3, every_minutes=20), None, NOW)
    # The third reminder (at 60 minutes) would come after the prompt expired (50).
    assert [r["kind"] for r in rows] == ["ema_prompt", "reminder", "reminder"]
    assert [r["send_at"] - NOW for r in rows] == [
        timedelta(0),
        *(timedelta(minutes=m) for m in (20, 40)),
    ]
    assert {r["data"]["collapse_key"] for r in rows} == {prompt_collapse_key(o.scheduled_item_id)}
    assert {r["deep_link"] for r in rows} == {prompt_link(o.scheduled_item_id)}
    assert {(r["participant_id"], r["study_id"], r["scheduled_item_id"]) for r in rows} == {
        (o.participant_id, o.study_id, o.scheduled_item_id)
    }
    assert all(r["expires_at"] == o.expires_at for r in rows)


def test_a_prompt_without_expiry_gets_no_reminders() -> None:
    rows = prompt_notifications(origin(expires_at=None), schedule(2, 20), None, NOW)
    assert [r["kind"] for r in rows] == ["ema_prompt"]


def test_an_intervention_row_carries_the_decision_and_no_collapse_key() -> None:
    o = origin()
    decision = uuid.uuid4()
    row = intervention_notification(
        o, Delivery(decision, "walk", "Walk", "A short walk?", data={"minutes": "5"}), NOW
    )
    assert row["kind"] == NotificationKind.intervention
    assert (row["decision_id"], row["option_id"]) == (decision, "walk")
    assert row["data"] == {"minutes": "5"}
    assert row["expires_at"] == NOW + INTERVENTION_VALIDITY
    assert row["scheduled_item_id"] == o.scheduled_item_id


def _prompt_with_reminders_fired(world: World) -> tuple[uuid.UUID, LoggingProvider]:
    """A 20:00 Berlin prompt with two reminders, fired and pushed; returns the prompt id."""
    person = enrolled(
        world,
        protocol_yaml(
            dp_times=["09:00"],
            ema_times=["20:00"],
            reminders={"count": 2, "every_minutes": 20},
            expires_after=50,
        ),
    )
    add_device(world, person)
    provider = LoggingProvider()
    w = worker(world, provider=provider)
    world.clock.set(datetime(2026, 3, 1, 19, 0, tzinfo=UTC))
    w.tick()
    with world.session_factory() as session:
        (prompt,) = items(session, person.participant_id, kind=ItemKind.ema_prompt, status="done")
    return prompt.id, provider


def test_the_sender_cancels_a_reminder_whose_prompt_closed_after_it_was_written(
    world: World,
) -> None:
    prompt_id, provider = _prompt_with_reminders_fired(world)
    # Answered without the answer's event (which cancels pending reminders): the race of an
    # answer arriving while a sender holds the reminder.
    with world.session_factory() as session:
        session.execute(
            sa.update(ScheduledItem)
            .where(ScheduledItem.id == prompt_id)
            .values(answered_at=world.clock.now())
        )
        session.commit()
    asked: list[set[uuid.UUID]] = []

    def recording(session: Session, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        asked.append(set(ids))
        return closed_prompts(session, ids)

    sent_before = len(provider.sent)
    world.clock.advance(timedelta(minutes=20))
    report = send_batch(
        world.session_factory, world.clock, "w1", provider, SendPolicy(), closed_prompts=recording
    )
    assert asked == [{prompt_id}]
    assert (report.claimed, report.cancelled, report.sent) == (1, 1, 0)
    assert len(provider.sent) == sent_before
    with world.session_factory() as session:
        reminder = session.scalars(
            sa.select(Notification).where(
                Notification.kind == NotificationKind.reminder,
                Notification.status == NotificationStatus.cancelled,
            )
        ).one()
    assert reminder.status_reason == "prompt answered or closed"


def test_closed_prompts_names_only_answered_or_unfired_items(world: World) -> None:
    prompt_id, _ = _prompt_with_reminders_fired(world)
    unknown = uuid.uuid4()
    with world.session_factory() as session:
        assert closed_prompts(session, [prompt_id, unknown]) == set()
        assert closed_prompts(session, []) == set()
        session.execute(
            sa.update(ScheduledItem)
            .where(ScheduledItem.id == prompt_id)
            .values(answered_at=world.clock.now())
        )
        assert closed_prompts(session, [prompt_id, unknown]) == {prompt_id}
