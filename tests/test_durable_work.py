"""The kit every durable sender shares: leases (claim, retake), backoff, and channels."""

import random
import uuid
from collections.abc import Sequence
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.alerts.models import Alert, WebhookStatus
from app.alerts.webhook import WebhookConfig, WebhookMessage, WebhookResult, deliver_due
from app.core.leases import claim, retake
from app.core.retry import Backoff
from app.export.jobs import JOBS
from app.export.models import ExportJob, ExportStatus
from tests.conftest import World
from tests.support.exports import export_job
from tests.support.ingest import evening, pain_study, phone

LEASE = timedelta(minutes=5)


@given(
    attempt=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32),
    retry_after=st.none() | st.floats(min_value=0, max_value=10_000),
)
def test_backoff_doubles_within_its_jitter_up_to_the_cap_and_honours_retry_after(
    attempt: int, seed: int, retry_after: float | None
) -> None:
    backoff = Backoff(timedelta(seconds=30), timedelta(hours=1), jitter=(0.5, 1.0))
    delay = backoff.delay(attempt, random.Random(seed), at_least_seconds=retry_after)  # noqa: S311
    ceiling = min(timedelta(hours=1), timedelta(seconds=30) * 2 ** (attempt - 1))
    assert delay >= ceiling * 0.5
    if retry_after is None:
        assert delay <= ceiling
    else:
        assert delay >= timedelta(seconds=retry_after) - timedelta(microseconds=1)
        assert delay <= max(ceiling, timedelta(seconds=retry_after) + timedelta(microseconds=1))


def _jobs(world: World, count: int) -> list[uuid.UUID]:
    study_id = uuid.UUID(pain_study(world))
    now = world.clock.now()
    with world.session_factory() as session:
        jobs = [export_job(study_id, now + timedelta(seconds=i)) for i in range(count)]
        session.add_all(jobs)
        session.commit()
        return [job.id for job in jobs]


def test_a_claim_takes_the_oldest_waiting_rows_once(world: World) -> None:
    first, second, third = _jobs(world, 3)
    now = world.clock.now()
    with world.session_factory.begin() as session:
        assert set(claim(session, JOBS, now, "a", LEASE, limit=2)) == {first, second}
    with world.session_factory.begin() as session:
        assert claim(session, JOBS, now, "b", LEASE, limit=2) == [third]
        assert claim(session, JOBS, now, "b", LEASE, limit=2) == []
    with world.session_factory() as session:
        held = session.get_one(ExportJob, first)
        assert (held.status, held.lease_owner) == (ExportStatus.running, "a")
        assert held.lease_expires_at == now + LEASE
        assert held.started_at == now  # the table's stamp


def test_an_expired_lease_passes_to_another_worker_and_the_first_settles_nothing(
    world: World,
) -> None:
    [job] = _jobs(world, 1)
    now = world.clock.now()
    with world.session_factory.begin() as session:
        assert claim(session, JOBS, now, "a", LEASE, limit=1) == [job]
    # Still held: nobody else may take it; its owner may renew it.
    with world.session_factory.begin() as session:
        assert claim(session, JOBS, now + LEASE / 2, "b", LEASE, limit=1) == []
        assert [r.id for r in retake(session, JOBS, [job], "a", now + LEASE / 2, LEASE)] == [job]
    # Worker a stalls past its renewed lease; b takes the job over.
    later = now + LEASE * 2
    with world.session_factory.begin() as session:
        assert claim(session, JOBS, later, "b", LEASE, limit=1) == [job]
    with world.session_factory.begin() as session:
        assert retake(session, JOBS, [job], "a", later, LEASE) == []
        [row] = retake(session, JOBS, [job], "b", later, LEASE, ExportJob.dataset)
        assert (row.id, row.dataset) == (job, "decisions")


def test_settled_rows_are_never_claimed_again(world: World) -> None:
    [job] = _jobs(world, 1)
    with world.session_factory.begin() as session:
        session.get_one(ExportJob, job).status = ExportStatus.done
    with world.session_factory.begin() as session:
        assert claim(session, JOBS, world.clock.now() + LEASE * 10, "a", LEASE, limit=5) == []


class FlakyChannel:
    """A webhook channel that fails the first ``failures`` messages, then takes the rest."""

    name = "recording"
    max_batch = 1

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[WebhookMessage] = []

    def send(self, messages: Sequence[WebhookMessage]) -> list[WebhookResult]:
        results = []
        for message in messages:
            self.sent.append(message)
            failed = len(self.sent) <= self.failures
            results.append(WebhookResult("HTTP 503: try later" if failed else None))
        return results


def test_alert_deliveries_go_through_any_channel(world: World) -> None:
    me = phone(world, pain_study(world))
    me.post("ema-responses", [evening(world.clock.now(), self_harm=True)])
    with world.session_factory.begin() as session:
        alert = session.query(Alert).one()
        alert.webhook_status = WebhookStatus.pending
        alert.webhook_next_attempt_at = world.clock.now()
        alert_id = alert.id
    channel = FlakyChannel(failures=1)
    # No URL anyone listens on: the channel, not HTTP, carries the alert.
    config = WebhookConfig(url="http://127.0.0.1:9/unused", timeout_seconds=1.0, max_attempts=3)
    assert deliver_due(world.session_factory, world.clock, config, channel=channel) == 0
    with world.session_factory() as session:
        alert = session.get_one(Alert, alert_id)
        assert alert.webhook_last_error == "HTTP 503: try later"
        assert alert.webhook_next_attempt_at is not None
        wait = alert.webhook_next_attempt_at - world.clock.now()
    world.clock.advance(wait)
    assert deliver_due(world.session_factory, world.clock, config, channel=channel) == 1
    with world.session_factory() as session:
        assert session.get_one(Alert, alert_id).webhook_status == WebhookStatus.delivered
    assert [m.alert_id for m in channel.sent] == [alert_id, alert_id]
    assert b'"attempt": 2' in channel.sent[1].body


def test_an_alert_whose_poster_died_is_posted_again_after_its_lease(world: World) -> None:
    me = phone(world, pain_study(world))
    me.post("ema-responses", [evening(world.clock.now(), self_harm=True)])
    now = world.clock.now()
    with world.session_factory.begin() as session:
        alert = session.query(Alert).one()
        # A process claimed it and died while posting: held, its lease running out.
        alert.webhook_status = WebhookStatus.sending
        alert.webhook_attempts = 1
        alert.webhook_lease_owner = "dead-process"
        alert.webhook_lease_expires_at = now + timedelta(minutes=1)
        alert.webhook_next_attempt_at = now
        alert_id = alert.id
    channel = FlakyChannel(failures=0)
    config = WebhookConfig(url="http://127.0.0.1:9/unused", timeout_seconds=1.0, max_attempts=3)
    assert deliver_due(world.session_factory, world.clock, config, channel=channel) == 0
    assert channel.sent == []  # still held by its lease
    world.clock.advance(timedelta(minutes=2))
    assert deliver_due(world.session_factory, world.clock, config, channel=channel) == 1
    with world.session_factory() as session:
        alert = session.get_one(Alert, alert_id)
        assert alert.webhook_status == WebhookStatus.delivered
        assert alert.webhook_attempts == 2
        assert (alert.webhook_lease_owner, alert.webhook_lease_expires_at) == (None, None)
    assert [m.alert_id for m in channel.sent] == [alert_id]
