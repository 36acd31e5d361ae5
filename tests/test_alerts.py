"""Escalation alerts: raised from EMA answers, listed and acknowledged by staff, and
delivered to a real webhook receiver on 127.0.0.1, retried with backoff until it answers."""

import hashlib
import hmac
import json
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.alerts.models import Alert, WebhookStatus
from app.alerts.webhook import WebhookConfig, deliver_due, retry_delay
from app.api.main import create_app
from app.core.config import Settings
from app.notifications.providers import LoggingProvider
from app.staff.models import Role
from app.worker.runner import Worker
from tests.conftest import World
from tests.support.ingest import evening, morning, pain_study, phone
from tests.support.scheduling import decide_nothing
from tests.support.webhook_receiver import Receiver


@pytest.fixture
def hooked(world: World, settings: Settings, receiver: Receiver) -> Iterator[World]:
    """The world, served by an app whose alert webhook points at the receiver."""
    hooked_settings = settings.model_copy(
        update={
            "alert_webhook_url": receiver.url,
            "alert_webhook_secret": "hook-secret",
            "alert_webhook_timeout_seconds": 2.0,
            "alert_webhook_max_attempts": 3,
        }
    )
    with TestClient(create_app(hooked_settings, world.clock), raise_server_exceptions=False) as c:
        yield World(c, world.session_factory, world.clock, world.engine)


def _config(receiver: Receiver, **changes: Any) -> WebhookConfig:
    values = {"url": receiver.url, "timeout_seconds": 2.0, "max_attempts": 3, **changes}
    return WebhookConfig(**values)


def _alerts(world: World) -> list[Alert]:
    with world.session_factory() as session:
        return list(session.query(Alert).order_by(Alert.created_at, Alert.id))


def test_a_self_harm_answer_raises_a_critical_alert_at_once(world: World) -> None:
    me = phone(world, pain_study(world))
    now = world.clock.now()
    me.post("ema-responses", [evening(now, self_harm=False)])
    assert _alerts(world) == []
    result = me.post("ema-responses", [evening(now, self_harm=True)])
    [alert] = _alerts(world)
    assert alert.severity == "critical"
    assert alert.item_id == "self_harm"
    assert alert.questionnaire_id == "evening"
    assert alert.value is True
    assert str(alert.response_id) == result["items"][0]["id"]
    assert alert.webhook_status == WebhookStatus.not_configured


def test_consecutive_escalations_need_the_whole_run(world: World) -> None:
    me = phone(world, pain_study(world))
    t = world.clock.now()
    world.clock.advance(timedelta(days=1))
    me.post("ema-responses", [morning(t, pain=10)])
    assert _alerts(world) == []  # one 10/10 is not two in a row
    me.post("ema-responses", [morning(t + timedelta(hours=1), pain=9)])
    me.post("ema-responses", [morning(t + timedelta(hours=2), pain=10)])
    assert _alerts(world) == []  # the run was broken by the 9
    me.post("ema-responses", [morning(t + timedelta(hours=3), pain=10)])
    assert [a.message for a in _alerts(world)] == ["Pain rated 10/10 in two consecutive check-ins."]
    # Answers sent together after a day offline count in the order they were given.
    me.post(
        "ema-responses",
        [morning(t + timedelta(hours=h), pain=10) for h in (5, 4)],
    )
    assert len(_alerts(world)) == 3
    # Another questionnaire's pain item is another item.
    me.post("ema-responses", [evening(t + timedelta(hours=6), pain=10)])
    assert len(_alerts(world)) == 3


def test_a_run_is_judged_on_the_answers_just_before_in_a_long_history(world: World) -> None:
    me = phone(world, pain_study(world))
    t = world.clock.now()
    world.clock.advance(timedelta(days=1))

    def at(minutes: int) -> datetime:
        return t + timedelta(minutes=minutes)

    # Many stored answers between two 10/10s sent in one batch: the run is broken.
    me.post("ema-responses", [morning(at(m), pain=3) for m in range(1, 60)])
    me.post("ema-responses", [morning(at(0), pain=10), morning(at(60), pain=10)])
    assert _alerts(world) == []
    # Answers given at the same instant count in the order they were sent (by answer id).
    me.post("ema-responses", [morning(at(90), pain=3)])
    pair = me.post("ema-responses", [morning(at(120), pain=10), morning(at(120), pain=10)])
    [alert] = _alerts(world)
    assert str(alert.response_id) == pair["items"][1]["id"]
    me.post("ema-responses", [morning(at(150), pain=3)])
    me.post("ema-responses", [morning(at(180), pain=10), morning(at(180), pain=8)])
    me.post("ema-responses", [morning(at(181), pain=10)])
    assert len(_alerts(world)) == 1  # the answer just before it is the 8, sent second


def test_staff_list_and_acknowledge_alerts(world: World) -> None:
    me = phone(world, pain_study(world))
    me.post("ema-responses", [evening(world.clock.now(), self_harm=True)])
    path = f"/v1/studies/{me.study_id}/alerts"
    researcher = world.staff(Role.researcher)
    listed = world.client.get(path, params={"acknowledged": "false"}, headers=researcher).json()
    [alert] = listed["items"]
    assert alert["severity"] == "critical"
    assert alert["value"] is True
    assert alert["participant_id"] == me.id
    forbidden = world.client.post(
        f"{path}/{alert['id']}/acknowledge", json={"note": "seen"}, headers=researcher
    )
    assert forbidden.status_code == 403
    coordinator = world.staff(Role.coordinator)
    world.clock.advance(timedelta(minutes=7))
    done = world.client.post(
        f"{path}/{alert['id']}/acknowledge",
        json={"note": "Called the participant; safety plan reviewed."},
        headers=coordinator,
    )
    assert done.status_code == 200, done.text
    assert done.json()["acknowledgement_note"] == "Called the participant; safety plan reviewed."
    assert done.json()["acknowledged_at"].startswith(world.clock.now().strftime("%Y-%m-%dT%H:%M"))
    twice = world.client.post(
        f"{path}/{alert['id']}/acknowledge", json={"note": "again"}, headers=coordinator
    )
    assert twice.status_code == 409
    assert (
        world.client.get(path, params={"acknowledged": "false"}, headers=researcher).json()["items"]
        == []
    )
    other_study = world.study()
    elsewhere = world.client.post(
        f"/v1/studies/{other_study['id']}/alerts/{alert['id']}/acknowledge",
        json={"note": "x"},
        headers=coordinator,
    )
    assert elsewhere.status_code == 404
    empty_note = world.client.post(
        f"{path}/{alert['id']}/acknowledge", json={"note": "  "}, headers=coordinator
    )
    assert empty_note.status_code == 422


def test_the_webhook_is_called_after_the_response(hooked: World, receiver: Receiver) -> None:
    me = phone(hooked, pain_study(hooked))
    item = evening(hooked.clock.now(), self_harm=True)
    result = me.post("ema-responses", [item])
    # The replayed batch raises nothing again and sends nothing again.
    assert me.post("ema-responses", [item])["duplicate"] == 1
    [alert] = _alerts(hooked)
    assert alert.webhook_status == WebhookStatus.delivered
    assert alert.webhook_attempts == 1
    [(headers, body)] = receiver.requests
    payload = json.loads(body)
    assert payload["alert_id"] == str(alert.id)
    assert payload["severity"] == "critical"
    assert payload["participant_code"] == me.participant["code"]
    assert payload["response_id"] == result["items"][0]["id"]
    assert "value" not in payload  # answers stay in Kairos
    expected = hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert headers["X-Kairos-Signature"] == f"sha256={expected}"
    assert headers["X-Kairos-Alert-Id"] == str(alert.id)
    assert len(receiver.requests) == 1


def test_a_failing_receiver_is_retried_with_backoff(hooked: World, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    me = phone(hooked, pain_study(hooked))
    me.post("ema-responses", [evening(hooked.clock.now(), self_harm=True)])
    [alert] = _alerts(hooked)
    assert alert.webhook_status == WebhookStatus.pending
    assert alert.webhook_attempts == 1
    assert alert.webhook_last_error is not None
    assert alert.webhook_last_error.startswith("HTTP 500")
    assert alert.webhook_next_attempt_at is not None
    wait = alert.webhook_next_attempt_at - hooked.clock.now()
    assert timedelta(seconds=15) <= wait <= timedelta(seconds=45)
    config = _config(receiver)
    # Not due yet: nothing is sent.
    assert deliver_due(hooked.session_factory, hooked.clock, config) == 0
    assert len(receiver.requests) == 1
    hooked.clock.advance(wait)
    assert deliver_due(hooked.session_factory, hooked.clock, config) == 0  # the 503
    [alert] = _alerts(hooked)
    assert alert.webhook_attempts == 2
    assert alert.webhook_next_attempt_at is not None
    later = alert.webhook_next_attempt_at - hooked.clock.now()
    assert timedelta(seconds=30) <= later <= timedelta(seconds=90)  # doubled, with jitter
    hooked.clock.advance(later)
    # The worker's tick retries it.
    Worker(
        hooked.session_factory,
        hooked.clock,
        tick_seconds=5,
        alert_webhook=config,
        decider=decide_nothing,
        provider=LoggingProvider(),
    ).tick()
    [alert] = _alerts(hooked)
    assert alert.webhook_status == WebhookStatus.delivered
    assert alert.webhook_attempts == 3
    assert alert.webhook_last_error is None
    assert [p["alert_id"] for p in receiver.payloads()] == [str(alert.id)] * 3
    assert [p["attempt"] for p in receiver.payloads()] == [1, 2, 3]


def test_delivery_gives_up_after_the_limit(world: World, receiver: Receiver) -> None:
    me = phone(world, pain_study(world))
    # Alerts raised while a webhook is configured are pending; simulate by configuring now.
    with world.session_factory() as session:
        me.post("ema-responses", [evening(world.clock.now(), self_harm=True)])
        alert = session.query(Alert).one()
        alert.webhook_status = WebhookStatus.pending
        alert.webhook_next_attempt_at = world.clock.now()
        session.commit()
    receiver.statuses = [500] * 10
    config = _config(receiver, max_attempts=3)
    for _ in range(5):
        deliver_due(world.session_factory, world.clock, config, rng=random.Random(1))  # noqa: S311
        world.clock.advance(timedelta(hours=2))
    [alert] = _alerts(world)
    assert alert.webhook_status == WebhookStatus.failed
    assert alert.webhook_attempts == 3
    assert alert.webhook_next_attempt_at is None
    assert len(receiver.requests) == 3


def test_an_unreachable_receiver_is_recorded(world: World, receiver: Receiver) -> None:
    me = phone(world, pain_study(world))
    me.post("ema-responses", [evening(world.clock.now(), self_harm=True)])
    with world.session_factory() as session:
        alert = session.query(Alert).one()
        alert.webhook_status = WebhookStatus.pending
        alert.webhook_next_attempt_at = world.clock.now()
        session.commit()
    url = receiver.url
    receiver.close()  # nothing listens on that port any more
    deliver_due(world.session_factory, world.clock, WebhookConfig(url, 1.0, 3))
    [alert] = _alerts(world)
    assert alert.webhook_status == WebhookStatus.pending
    assert alert.webhook_last_error is not None
    assert "ConnectError" in alert.webhook_last_error
    # Once a receiver answers again, the next due attempt delivers it.
    back = Receiver()
    try:
        world.clock.advance(timedelta(minutes=5))
        assert deliver_due(world.session_factory, world.clock, WebhookConfig(back.url, 1.0, 3)) == 1
        assert [p["alert_id"] for p in back.payloads()] == [str(alert.id)]
    finally:
        back.close()


def test_a_claimed_alert_is_not_sent_twice(hooked: World, receiver: Receiver) -> None:
    receiver.statuses = [500]
    me = phone(hooked, pain_study(hooked))
    me.post("ema-responses", [evening(hooked.clock.now(), self_harm=True)])
    hooked.clock.advance(timedelta(hours=2))
    config = _config(receiver)
    # Two workers tick at once: the conditional claim lets exactly one post.
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(deliver_due(hooked.session_factory, hooked.clock, config))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1]
    assert len(receiver.requests) == 2  # the first failure, then one retry


def test_retry_delays_grow_and_are_capped() -> None:
    rng = random.Random(7)  # noqa: S311
    delays = [retry_delay(n, rng) for n in range(1, 12)]
    assert timedelta(seconds=15) <= delays[0] <= timedelta(seconds=45)
    assert all(d <= timedelta(minutes=90) for d in delays)
    assert delays[-1] >= timedelta(minutes=30)
