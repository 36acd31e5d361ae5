"""The outbox sender with the real firebase-admin client against a fake FCM server."""

import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from app.core.config import Environment, Settings
from app.notifications.fcm import FcmProvider, retry_after_seconds
from app.notifications.models import (
    AttemptOutcome,
    DeliveryAttempt,
    Device,
    Notification,
    NotificationStatus,
)
from app.notifications.provider_setup import provider_from_settings
from app.notifications.providers import LoggingProvider
from app.notifications.sender import SendPolicy, backoff, claim_sendable, send_batch
from app.participants.models import Participant
from app.scheduling.fired_prompts import closed_prompts
from app.staff.models import Role
from app.worker.runner import Worker
from tests.conftest import World
from tests.support import fake_fcm
from tests.support.push import person_with_devices
from tests.support.scheduling import fire_due, worker

DUE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the 09:00 Berlin decision point


def fire(world: World, provider: FcmProvider, policy: SendPolicy | None = None) -> Worker:
    w = worker(world, provider=provider, send_policy=policy or SendPolicy())
    world.clock.set(DUE)
    w.run_pending()
    return w


def only_notification(world: World) -> Notification:
    with world.session_factory() as session:
        (row,) = session.scalars(sa.select(Notification)).all()
        return row


def attempts(world: World) -> list[DeliveryAttempt]:
    with world.session_factory() as session:
        return list(
            session.scalars(sa.select(DeliveryAttempt).order_by(DeliveryAttempt.started_at))
        )


def test_push_reaches_fcm_with_payload_ttl_priority_and_apns_headers(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    person_with_devices(world, "token-ok")
    fire(world, provider)
    row = only_notification(world)
    assert row.status == NotificationStatus.sent
    assert row.sent_at == DUE
    assert row.attempts == 1
    (message,) = fake.accepted()
    assert message["token"] == "token-ok"
    assert message["notification"] == {
        "title": "Time for a short walk",
        "body": "A few minutes of gentle movement can ease stiffness.",
    }
    # The stable id the app echoes back in engagement events.
    assert message["data"]["notification_id"] == str(row.id)
    assert message["data"]["kind"] == "intervention"
    assert message["data"]["exercise_id"] == "walk"
    assert message["android"]["priority"] == "high"
    assert message["android"]["ttl"] == "3600s"  # the intervention's remaining validity
    headers = message["apns"]["headers"]
    assert headers["apns-priority"] == "10"
    assert headers["apns-expiration"] == str(int((DUE + timedelta(hours=1)).timestamp()))
    (attempt,) = attempts(world)
    assert attempt.outcome == AttemptOutcome.accepted
    assert attempt.provider == "fcm"
    assert attempt.response is not None
    assert attempt.response.startswith("projects/kairos-test/messages/")


def test_unregistered_token_disables_the_device_and_flags_the_participant(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    fake.plans["dead-token"] = ["unregistered"]
    person = person_with_devices(world, "dead-token")
    fire(world, provider)
    row = only_notification(world)
    assert row.status == NotificationStatus.failed
    assert row.status_reason == "no reachable device: UNREGISTERED"
    with world.session_factory() as session:
        device = session.scalars(sa.select(Device)).one()
        assert not device.enabled
        assert device.disabled_reason == "fcm: UNREGISTERED"
        participant = session.get_one(Participant, person.participant_id)
        assert participant.unreachable_since == DUE
    (attempt,) = attempts(world)
    assert attempt.outcome == AttemptOutcome.invalid_token
    assert attempt.error_code == "UNREGISTERED"
    # Coordinators see it, and can list only unreachable participants.
    staff = world.staff(Role.coordinator)
    base = f"/v1/studies/{person.study_id}/participants"
    view = world.client.get(f"{base}/{person.participant_id}", headers=staff).json()
    assert view["unreachable_since"] is not None
    assert "unregistered" in view["unreachable_reason"]
    listed = world.client.get(f"{base}?unreachable=true", headers=staff).json()["items"]
    assert [p["id"] for p in listed] == [str(person.participant_id)]
    assert world.client.get(f"{base}?unreachable=false", headers=staff).json()["items"] == []
    # A fresh token makes the participant reachable again.
    world.client.post(
        "/v1/me/devices",
        json={"push_token": "new-token", "platform": "ios"},
        headers=person.headers,
    )
    view = world.client.get(f"{base}/{person.participant_id}", headers=staff).json()
    assert view["unreachable_since"] is None


@pytest.mark.parametrize("answer", ["invalid_token", "sender_mismatch"])
def test_invalid_tokens_disable_the_device(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm], answer: str
) -> None:
    provider, fake = fcm
    fake.plans["bad"] = [answer]
    person_with_devices(world, "bad")
    fire(world, provider)
    with world.session_factory() as session:
        assert not session.scalars(sa.select(Device)).one().enabled
    assert attempts(world)[0].outcome == AttemptOutcome.invalid_token


def test_one_dead_device_of_two_still_delivers(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    fake.plans["old-phone"] = ["unregistered"]
    person = person_with_devices(world, "old-phone", "new-phone")
    fire(world, provider)
    assert only_notification(world).status == NotificationStatus.sent
    with world.session_factory() as session:
        enabled = {d.push_token: d.enabled for d in session.scalars(sa.select(Device))}
        assert enabled == {"old-phone": False, "new-phone": True}
        assert session.get_one(Participant, person.participant_id).unreachable_since is None
    assert sorted(a.outcome for a in attempts(world)) == ["accepted", "invalid_token"]


def test_quota_error_is_retried_after_retry_after_then_sent(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    fake.plans["busy"] = ["quota", "ok"]
    person_with_devices(world, "busy")
    w = fire(world, provider)
    row = only_notification(world)
    assert row.status == NotificationStatus.pending
    assert row.status_reason == "retrying after: QUOTA_EXCEEDED"
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= DUE + timedelta(seconds=120)  # Retry-After honoured
    (first,) = attempts(world)
    assert first.retry_after_seconds == 120
    world.clock.set(DUE + timedelta(seconds=119))
    w.run_pending()
    assert len(attempts(world)) == 1  # not before Retry-After
    world.clock.set(row.next_attempt_at)
    w.run_pending()
    row = only_notification(world)
    assert row.status == NotificationStatus.sent
    assert row.attempts == 2
    assert [a.outcome for a in attempts(world)] == ["retry", "accepted"]


def test_retry_after_as_an_http_date_is_honoured(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    fake.plans["busy"] = ["quota_date", "ok"]
    person_with_devices(world, "busy")
    fire(world, provider)
    row = only_notification(world)
    assert row.status == NotificationStatus.pending
    (first,) = attempts(world)
    assert first.retry_after_seconds is not None
    assert 89 <= first.retry_after_seconds <= 91  # whole seconds in HTTP dates
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= DUE + timedelta(seconds=89)


@pytest.mark.parametrize(
    ("value", "date", "seconds"),
    [
        ("120", None, 120.0),
        (" 7 ", "Wed, 25 Nov 2026 15:00:00 GMT", 7.0),
        ("-5", None, 0.0),
        ("Wed, 25 Nov 2026 15:02:00 GMT", "Wed, 25 Nov 2026 15:00:00 GMT", 120.0),
        ("Wed, 25 Nov 2026 14:59:00 GMT", "Wed, 25 Nov 2026 15:00:00 GMT", 0.0),  # past
        ("Wed, 25 Nov 2026 15:02:00 GMT", None, None),  # nothing to count from
        ("soon", "Wed, 25 Nov 2026 15:00:00 GMT", None),
        ("Wed, 25 Nov 2026 15:02:00 GMT", "yesterday", None),
    ],
)
def test_retry_after_header_values(value: str, date: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, date) == seconds


def test_server_errors_are_retried_with_backoff_up_to_a_limit(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    fake.plans["down"] = ["unavailable"]
    person_with_devices(world, "down")
    w = fire(world, provider, SendPolicy(max_attempts=3))
    for _ in range(5):
        row = only_notification(world)
        if row.next_attempt_at is None:
            break
        world.clock.set(row.next_attempt_at)
        w.run_pending()
    row = only_notification(world)
    assert row.status == NotificationStatus.failed
    assert row.status_reason == "gave up after 3 attempts: UNAVAILABLE"
    tries = attempts(world)
    assert [a.attempt for a in tries] == [1, 2, 3]
    assert {a.error_code for a in tries} == {"UNAVAILABLE"}
    # firebase-admin's own status retry is off: one HTTP request per attempt.
    assert len(fake.received) == 3


@pytest.mark.parametrize(
    ("answer", "code"), [("payload", "INVALID_ARGUMENT"), ("apns_auth", "THIRD_PARTY_AUTH_ERROR")]
)
def test_payload_and_auth_errors_are_alerted_not_retried(
    world: World,
    fcm: tuple[FcmProvider, fake_fcm.FakeFcm],
    caplog: pytest.LogCaptureFixture,
    answer: str,
    code: str,
) -> None:
    provider, fake = fcm
    fake.plans["tok"] = [answer]
    person_with_devices(world, "tok")
    with caplog.at_level(logging.ERROR):
        w = fire(world, provider)
    row = only_notification(world)
    assert row.status == NotificationStatus.failed
    assert row.status_reason == f"rejected by fcm: {code}"
    assert any("push alert" in r.message for r in caplog.records)
    world.clock.advance(timedelta(hours=2))
    w.run_pending()
    assert len(attempts(world)) == 1
    with world.session_factory() as session:
        assert session.scalars(sa.select(Device)).one().enabled  # the token is fine


def test_a_push_past_its_expiry_is_not_sent(world: World) -> None:
    provider = LoggingProvider()
    person_with_devices(world, "tok")
    w = worker(world, provider=provider)
    world.clock.set(DUE)
    # Decide without sending: the sender's run is simulated as down for two hours.
    fire_due(world)
    world.clock.advance(timedelta(hours=2))
    w.run_pending()
    row = only_notification(world)
    assert row.status == NotificationStatus.expired
    assert not provider.sent


def test_a_crashed_senders_lease_expires_and_the_push_is_sent_again(world: World) -> None:
    provider = LoggingProvider()
    person_with_devices(world, "tok")
    world.clock.set(DUE)
    fire_due(world)
    with world.session_factory() as session:
        assert len(claim_sendable(session, DUE, "crashed", timedelta(minutes=2), 10)) == 1
        session.commit()
    policy = SendPolicy(lease=timedelta(minutes=2))
    early = send_batch(
        world.session_factory, world.clock, "w2", provider, policy, closed_prompts=closed_prompts
    )
    assert early.claimed == 0
    world.clock.advance(timedelta(minutes=2, seconds=1))
    report = send_batch(
        world.session_factory, world.clock, "w2", provider, policy, closed_prompts=closed_prompts
    )
    assert report.sent == 1
    assert len(provider.sent) == 1


def test_many_due_pushes_go_out_in_batches(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    people = [person_with_devices(world, f"tok-{i}") for i in range(7)]
    w = fire(world, provider, SendPolicy(batch_size=3))
    assert len(fake.accepted()) == len(people)
    with world.session_factory() as session:
        statuses = session.scalars(sa.select(Notification.status)).all()
        assert statuses == ["sent"] * len(people)
    w.run_pending()
    assert len(fake.accepted()) == len(people)


@given(
    attempt=st.integers(min_value=1, max_value=12),
    retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=7200)),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_doubles_with_jitter_and_honours_retry_after(
    attempt: int, retry_after: float | None, seed: int
) -> None:
    policy = SendPolicy()
    delay = backoff(attempt, policy, retry_after, random.Random(seed))  # noqa: S311
    ceiling = min(policy.max_backoff, policy.base_backoff * 2 ** (attempt - 1))
    assert delay >= ceiling / 2
    assert delay <= max(ceiling, timedelta(seconds=retry_after or 0) + timedelta(microseconds=1))
    if retry_after is not None:
        assert delay.total_seconds() >= retry_after


def test_logging_provider_is_the_default_without_credentials() -> None:
    settings = Settings(environment=Environment.test, secret_key="x" * 40)
    assert isinstance(provider_from_settings(settings), LoggingProvider)
    with_endpoint = settings.model_copy(update={"fcm_endpoint": "http://127.0.0.1:9"})
    provider = provider_from_settings(with_endpoint)
    assert isinstance(provider, FcmProvider)
    provider.close()
    production = settings.model_copy(
        update={"fcm_endpoint": "http://127.0.0.1:9", "environment": Environment.production}
    )
    assert production.unsafe_reason() is not None
    assert "KAIROS_FCM_ENDPOINT" in (production.unsafe_reason() or "")


def test_notification_ids_are_stable_uuids(
    world: World, fcm: tuple[FcmProvider, fake_fcm.FakeFcm]
) -> None:
    provider, fake = fcm
    person_with_devices(world, "tok")
    fire(world, provider)
    (message,) = fake.accepted()
    assert uuid.UUID(message["data"]["notification_id"]) == only_notification(world).id
