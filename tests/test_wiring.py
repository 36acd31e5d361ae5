"""Kairos is assembled in one place (app/wiring.py): listeners, decider and channels."""

import uuid
from collections.abc import Iterator

import pytest

from app.alerts.webhook import WebhookConfig
from app.core import events
from app.core.config import Settings
from app.core.events import ParticipantEvent
from app.decision_rules.engine import decide_batch
from app.notifications.providers import LoggingProvider
from app.protocols.timing import Event
from app.scheduling.triggers import on_participant_events
from app.wiring import connect_listeners, wire
from tests.conftest import World
from tests.support.protocols import AFTER_EXERCISE, protocol_yaml
from tests.support.scheduling import Enrolled, enrolled, items


@pytest.fixture
def disconnected() -> Iterator[None]:
    """No listener connected, as in a process that never built the API app; connected
    again afterwards, as the other tests expect."""
    for kind in Event:
        events.unsubscribe_batch(kind, on_participant_events)
    try:
        yield
    finally:
        connect_listeners()


def _triggered_study(world: World) -> Enrolled:
    document = protocol_yaml(
        dp_times=["09:00"],
        ema_times=[],
        extra_ema=[AFTER_EXERCISE],
    )
    return enrolled(world, document)


def _exercise_completed(world: World, person: Enrolled) -> int:
    """Publish one completed exercise outside the API app; the triggered prompts after it."""
    event = ParticipantEvent(
        Event.exercise_completed,
        person.participant_id,
        uuid.UUID(person.study_id),
        world.clock.now(),
        uuid.uuid4(),
    )
    with world.session_factory() as session:
        events.publish(session, world.clock, event)
        session.commit()
    with world.session_factory() as session:
        return sum("-trigger:" in r.slot_key for r in items(session, person.participant_id))


def test_events_reach_the_triggers_once_connected_and_once_only(
    world: World, disconnected: None
) -> None:
    person = _triggered_study(world)
    assert _exercise_completed(world, person) == 0  # nobody listening: nothing triggered
    connect_listeners()
    connect_listeners()  # idempotent
    assert _exercise_completed(world, person) == 1


def test_wire_assembles_the_engine_and_the_channels_the_settings_ask_for(
    disconnected: None,
) -> None:
    plain = wire(Settings(_env_file=None, database_url="sqlite://"))
    assert plain.decider is decide_batch
    assert isinstance(plain.provider, LoggingProvider)  # no FCM credentials: pushes logged
    assert plain.alert_webhook is None
    assert all(on_participant_events in events._batch_listeners[kind] for kind in Event)

    hooked = wire(
        Settings(
            _env_file=None,
            database_url="sqlite://",
            alert_webhook_url="http://127.0.0.1:9/alerts",
            alert_webhook_max_attempts=3,
        )
    )
    assert hooked.alert_webhook == WebhookConfig(
        url="http://127.0.0.1:9/alerts", timeout_seconds=5.0, max_attempts=3
    )
