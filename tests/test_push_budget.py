"""The daily push budget (policy.availability.max_pushes_per_day): every push counts;
interventions become unavailable, reminders and triggered prompts are not pushed, scheduled
EMA prompts always are."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml

from app.decision_rules.engine import decide_batch
from app.decision_rules.models import Decision
from app.listeners import connect_listeners
from app.notifications.models import Notification, NotificationKind, NotificationStatus
from app.protocols.loading import parse_protocol
from app.protocols.warnings import protocol_warnings
from tests.conftest import World
from tests.support.protocols import AFTER_EXERCISE, protocol_yaml
from tests.support.scheduling import Enrolled, add_device, enrolled, run_until, worker

BERLIN = ZoneInfo("Europe/Berlin")


def _protocol(budget: int, **options: Any) -> str:
    document = yaml.safe_load(protocol_yaml(**options))
    document["policy"]["rules"] = [{"id": "all", "when": "true", "option": "walk"}]
    document["policy"]["availability"] = {"max_pushes_per_day": budget}
    return yaml.safe_dump(document, sort_keys=False)


def _local(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def _pushes(world: World, person: Enrolled) -> list[tuple[str, str, str, str | None]]:
    """(local time, kind, status, reason) of the participant's pushes on 2 March."""
    with world.session_factory() as session:
        rows = session.scalars(
            sa.select(Notification)
            .where(
                Notification.participant_id == person.participant_id,
                Notification.send_at >= _local(0),
            )
            .order_by(Notification.send_at)
        ).all()
        return [
            (
                n.send_at.astimezone(BERLIN).strftime("%H:%M"),
                n.kind,
                n.status,
                n.status_reason,
            )
            for n in rows
        ]


def test_interventions_are_unavailable_once_the_budget_is_spent(world: World) -> None:
    document = _protocol(
        3,
        ema_times=["08:00"],
        reminders={"count": 1, "every_minutes": 30},
        expires_after=90,
        dp_times=["09:00", "10:00", "11:00"],
    )
    person = enrolled(world, document)
    add_device(world, person)
    run_until(world, worker(world, decide_batch), _local(12))
    # Prompt, reminder (unanswered) and the 09:00 intervention spend the budget of 3.
    assert [(t, k) for t, k, _, _ in _pushes(world, person)] == [
        ("08:00", NotificationKind.ema_prompt),
        ("08:30", NotificationKind.reminder),
        ("09:00", NotificationKind.intervention),
    ]
    with world.session_factory() as session:
        decisions = session.scalars(
            sa.select(Decision)
            .where(Decision.participant_id == person.participant_id)
            .where(Decision.planned_at >= _local(0))
            .order_by(Decision.planned_at)
        ).all()
    assert [d.available for d in decisions] == [True, False, False]
    assert decisions[1].unavailable_reason == (
        "daily push budget reached (3 pushes today, counting the scheduled EMA prompts still "
        "to come; the budget is 3)"
    )
    assert decisions[1].option_id is None


def test_reminders_and_triggered_prompts_over_the_budget_are_not_pushed(world: World) -> None:
    document = _protocol(
        2,
        ema_times=["08:00"],
        reminders={"count": 1, "every_minutes": 30},
        expires_after=90,
        dp_times=["08:10"],
        extra_ema=[AFTER_EXERCISE],
    )
    connect_listeners()  # what the API and the worker connect at start: triggers
    person = enrolled(world, document)
    add_device(world, person)
    w = worker(world, decide_batch)
    run_until(world, w, _local(8, 20))
    # The exercise the intervention offered, done: its after-exercise prompt is due 08:50.
    with world.session_factory() as session:
        intervention = session.scalars(
            sa.select(Notification).where(
                Notification.participant_id == person.participant_id,
                Notification.kind == NotificationKind.intervention,
            )
        ).one()
    done = world.client.post(
        "/v1/me/events",
        json={
            "items": [
                {
                    "client_id": "done-1",
                    "kind": "exercise_completed",
                    "occurred_at": world.clock.now().isoformat(),
                    "notification_id": str(intervention.id),
                    "exercise_id": "walk",
                    "duration_seconds": 180,
                }
            ]
        },
        headers=person.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["accepted"] == 1, done.text
    run_until(world, w, _local(9))
    # The triggered prompt itself stays open for the app (the pull list shows it).
    pending = world.client.get("/v1/me/prompts", headers=person.headers)
    assert pending.status_code == 200, pending.text
    assert "after_exercise" in {p["schedule_id"] for p in pending.json()["prompts"]}
    run_until(world, w, _local(10))
    budget = (
        "daily push budget reached (2 pushes today, counting the scheduled EMA prompts still "
        "to come; the budget is 2)"
    )
    assert _pushes(world, person) == [
        ("08:00", NotificationKind.ema_prompt, NotificationStatus.sent, None),
        ("08:10", NotificationKind.intervention, NotificationStatus.sent, None),
        ("08:30", NotificationKind.reminder, NotificationStatus.cancelled, budget),
        ("08:50", NotificationKind.ema_prompt, NotificationStatus.cancelled, budget),
    ]


def test_scheduled_ema_prompts_are_sent_beyond_the_budget(world: World) -> None:
    document = _protocol(1, ema_times=["08:00", "12:00"], dp_times=["09:00"])
    person = enrolled(world, document)
    add_device(world, person)
    run_until(world, worker(world, decide_batch), _local(13))
    assert [(t, k, s) for t, k, s, _ in _pushes(world, person)] == [
        ("08:00", NotificationKind.ema_prompt, NotificationStatus.sent),
        ("12:00", NotificationKind.ema_prompt, NotificationStatus.sent),
    ]
    found = {w.path: w.message for w in protocol_warnings(parse_protocol(document))}
    assert (
        "the scheduled EMA prompts alone (2 a day) exceed max_pushes_per_day (1)"
        in (found["policy.availability.max_pushes_per_day"])
    )


def test_the_budget_keeps_room_for_the_scheduled_prompts_still_to_come(world: World) -> None:
    document = _protocol(3, ema_times=["08:00", "20:00"], dp_times=["09:00", "10:00"])
    person = enrolled(world, document)
    add_device(world, person)
    run_until(world, worker(world, decide_batch), _local(21))
    assert [(t, k) for t, k, _, _ in _pushes(world, person)] == [
        ("08:00", NotificationKind.ema_prompt),
        ("09:00", NotificationKind.intervention),
        ("20:00", NotificationKind.ema_prompt),
    ]
    with world.session_factory() as session:
        reasons = session.scalars(
            sa.select(Decision.unavailable_reason)
            .where(Decision.participant_id == person.participant_id)
            .where(Decision.planned_at >= _local(0))
            .order_by(Decision.planned_at)
        ).all()
    # At 10:00: two pushes so far and the 20:00 prompt to come.
    assert reasons[0] is None
    assert reasons[1] is not None
    assert reasons[1].startswith("daily push budget reached (3 pushes today")
