"""The pull fallback: GET /v1/me/prompts shows what pushes may not have delivered."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.notifications.models import Notification, NotificationKind
from app.scheduling.models import ScheduledItem
from tests.conftest import World
from tests.support.protocols import protocol_yaml
from tests.support.scheduling import decide_nothing, enrolled, worker

PROMPT_DUE = datetime(2026, 3, 1, 19, 0, tzinfo=UTC)  # 20:00 Berlin


def test_pending_prompts_and_interventions(world: World) -> None:
    document = protocol_yaml(dp_times=["20:10"], ema_times=["20:00"], expires_after=90)
    person = enrolled(world, document)
    other = enrolled(world, document)
    w = worker(world)
    assert world.client.get("/v1/me/prompts", headers=person.headers).json()["prompts"] == []
    world.clock.set(PROMPT_DUE)
    w.run_pending()
    world.clock.set(PROMPT_DUE + timedelta(minutes=10))
    w.run_pending()
    body = world.client.get("/v1/me/prompts", headers=person.headers).json()
    with world.session_factory() as session:
        prompt_push = session.scalars(
            sa.select(Notification).where(
                Notification.participant_id == person.participant_id,
                Notification.kind == NotificationKind.ema_prompt,
            )
        ).one()
        intervention = session.scalars(
            sa.select(Notification).where(
                Notification.participant_id == person.participant_id,
                Notification.kind == NotificationKind.intervention,
            )
        ).one()
    (prompt,) = body["prompts"]
    assert prompt["notification_id"] == str(prompt_push.id)
    assert prompt["scheduled_item_id"] == str(prompt_push.scheduled_item_id)
    assert prompt["questionnaire_id"] == "daily"
    assert prompt["schedule_id"] == "evening"
    assert prompt["deep_link"] == f"kairos://ema/{prompt_push.scheduled_item_id}"
    assert prompt["expires_at"] == "2026-03-01T20:30:00Z"
    # No device was registered: the push failed, the pull still offers it.
    assert intervention.status == "failed"
    (offered,) = body["interventions"]
    assert offered["notification_id"] == str(intervention.id)
    assert offered["option_id"] == "walk"
    assert offered["data"] == {"exercise_id": "walk"}
    # Another participant sees only their own.
    theirs = world.client.get("/v1/me/prompts", headers=other.headers).json()
    assert str(prompt_push.id) not in str(theirs)
    # Answered prompts disappear; interventions disappear when they expire.
    with world.session_factory() as session:
        item = session.get_one(ScheduledItem, prompt_push.scheduled_item_id)
        item.answered_at = world.clock.now()
        session.commit()
    body = world.client.get("/v1/me/prompts", headers=person.headers).json()
    assert body["prompts"] == []
    assert len(body["interventions"]) == 1
    world.clock.advance(timedelta(minutes=61))
    body = world.client.get("/v1/me/prompts", headers=person.headers).json()
    assert body["interventions"] == []
    assert body["as_of"] == "2026-03-01T20:11:00Z"


def test_expired_prompts_are_not_offered(world: World) -> None:
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]))
    w = worker(world, decide_nothing)
    world.clock.set(PROMPT_DUE)
    w.run_pending()
    assert len(world.client.get("/v1/me/prompts", headers=person.headers).json()["prompts"]) == 1
    world.clock.set(PROMPT_DUE + timedelta(minutes=60))
    assert world.client.get("/v1/me/prompts", headers=person.headers).json()["prompts"] == []
