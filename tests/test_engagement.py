"""Engagement events: tied to what they refer to, idempotent, and triggering decisions."""

import uuid
from datetime import timedelta
from typing import Any

import pytest

from app.notifications.models import Notification, NotificationKind
from app.protocols.timing import Event
from app.staff.models import Role
from tests.conftest import World
from tests.support.ingest import Phone, ema_prompt, pain_study, phone, recording


@pytest.fixture
def me(world: World) -> Phone:
    return phone(world, pain_study(world))


def notification(world: World, phone: Phone, kind: str = NotificationKind.intervention) -> str:
    now = world.clock.now()
    with world.session_factory() as session:
        row = Notification(
            participant_id=uuid.UUID(phone.id),
            study_id=uuid.UUID(phone.study_id),
            kind=kind,
            title="Making room for pain",
            body="A 5-minute acceptance exercise can help.",
            created_at=now,
            send_at=now,
        )
        session.add(row)
        session.commit()
        return str(row.id)


def event(world: World, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "client_id": uuid.uuid4().hex,
        "kind": kind,
        "occurred_at": world.clock.now().isoformat(),
        **fields,
    }


def test_a_prompt_to_exercise_journey(world: World, me: Phone) -> None:
    pushed = notification(world, me)
    items = [
        event(world, "prompt_received", notification_id=pushed),
        event(world, "prompt_opened", notification_id=pushed),
        event(world, "exercise_started", notification_id=pushed, exercise_id="acceptance-1"),
        event(
            world,
            "exercise_completed",
            notification_id=pushed,
            exercise_id="acceptance-1",
            duration_seconds=305.5,
        ),
        event(world, "helpfulness_rated", exercise_id="acceptance-1", rating=3),
    ]
    with recording(Event.exercise_completed, Event.prompt_opened) as recorder:
        result = me.post("events", items)
        again = me.post("events", items)
    assert result["accepted"] == 5, result
    assert again["duplicate"] == 5
    assert [r["id"] for r in again["items"]] == [r["id"] for r in result["items"]]
    assert recorder.kinds() == [Event.prompt_opened, Event.exercise_completed]
    assert str(recorder.events[0].reference_id) == pushed
    assert str(recorder.events[1].reference_id) == result["items"][3]["id"]
    listed = world.client.get("/v1/me/events", headers=me.headers).json()["items"]
    assert [e["kind"] for e in listed] == [i["kind"] for i in items]
    assert listed[3]["duration_seconds"] == 305.5
    staff = world.client.get(
        f"/v1/studies/{me.study_id}/participants/{me.id}/events",
        params={"kind": "helpfulness_rated"},
        headers=world.staff(Role.researcher),
    ).json()["items"]
    assert [e["rating"] for e in staff] == [3]


def test_opening_an_ema_push_is_not_an_intervention_trigger(world: World, me: Phone) -> None:
    ema_push = notification(world, me, NotificationKind.ema_prompt)
    prompt = ema_prompt(world, me)
    with recording(Event.prompt_opened) as recorder:
        result = me.post(
            "events",
            [
                event(world, "prompt_opened", notification_id=ema_push),
                event(world, "prompt_opened", prompt_id=str(prompt)),
            ],
        )
    assert result["accepted"] == 2
    assert recorder.events == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "prompt_opened"}, "notification_id", "names its notification_id or prompt_id"),
        ({"kind": "exercise_started"}, "exercise_id", "names its exercise_id"),
        ({"kind": "exercise_completed", "exercise_id": "x"}, "duration_seconds", "duration"),
        ({"kind": "helpfulness_rated", "exercise_id": "x"}, "rating", "rating 0..10"),
        ({"kind": "helpfulness_rated", "exercise_id": "x", "rating": 11}, "rating", "0..10"),
        ({"kind": "helpfulness_rated", "rating": 3}, "exercise_id", "names the exercise_id"),
        (
            {"kind": "exercise_started", "exercise_id": "x", "rating": 2},
            "rating",
            "only helpfulness_rated",
        ),
        ({"kind": "prompt_opened", "prompt_id": str(uuid.uuid4())}, "prompt_id", "no EMA prompt"),
        (
            {"kind": "prompt_opened", "notification_id": str(uuid.uuid4())},
            "notification_id",
            "no notification",
        ),
        (
            {"kind": "exercise_completed", "exercise_id": "x", "duration_seconds": -1},
            "duration_seconds",
            "greater than or equal to 0",
        ),
        ({"kind": "nap_taken"}, "kind", "Input should be"),
    ],
)
def test_each_kind_says_what_it_refers_to(
    world: World, me: Phone, fields: dict[str, Any], field: str, message: str
) -> None:
    body = {"client_id": "e-1", "occurred_at": world.clock.now().isoformat(), **fields}
    item = me.post("events", [body])["items"][0]
    assert item["status"] == "rejected"
    assert item["client_id"] == "e-1"
    errors = {e["field"]: e["message"] for e in item["errors"]}
    assert message in errors[f"body.items[0].{field}"], errors


def test_another_participants_notification_is_refused(world: World, me: Phone) -> None:
    other = phone(world, me.study_id)
    theirs = notification(world, other)
    their_prompt = ema_prompt(world, other)
    result = me.post(
        "events",
        [
            event(world, "prompt_opened", notification_id=theirs),
            event(world, "prompt_received", prompt_id=str(their_prompt)),
        ],
    )["items"]
    assert [r["status"] for r in result] == ["rejected", "rejected"]
    assert world.client.get("/v1/me/events", headers=other.headers).json()["items"] == []


def test_event_times_are_bounded(world: World, me: Phone) -> None:
    pushed = notification(world, me)
    late = {**event(world, "prompt_opened", notification_id=pushed)}
    late["occurred_at"] = (world.clock.now() + timedelta(hours=1)).isoformat()
    early = {**event(world, "prompt_opened", notification_id=pushed)}
    early["occurred_at"] = (world.clock.now() - timedelta(days=30)).isoformat()
    result = me.post("events", [late, early])["items"]
    assert [r["errors"][0]["field"] for r in result] == [
        "body.items[0].occurred_at",
        "body.items[1].occurred_at",
    ]
