"""Helpers for scheduling and delivery tests: a protocol, an enrolled participant, deciders."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.notifications.delivery import Delivery
from app.notifications.models import Notification, NotificationStatus
from app.notifications.providers import LoggingProvider, PushProvider
from app.scheduling.decision_hook import DecideBatch
from app.scheduling.dispatch import Settled, run_due_batch
from app.scheduling.models import ItemStatus, ScheduledItem
from app.staff.models import Role
from app.worker.runner import Worker
from tests.conftest import World, bearer


@dataclass
class Enrolled:
    study_id: str
    participant_id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def enrolled(world: World, document: str, timezone: str = "Europe/Berlin") -> Enrolled:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=document,
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    participant, token = world.enrolled_participant(study["id"], timezone=timezone)
    return Enrolled(study["id"], uuid.UUID(participant["id"]), token)


def upload(world: World, study_id: str, document: str) -> int:
    response = world.client.post(
        f"/v1/studies/{study_id}/protocols",
        content=document,
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    version: int = response.json()["version"]
    return version


def items(session: Session, participant_id: uuid.UUID, **filters: Any) -> list[ScheduledItem]:
    stmt = sa.select(ScheduledItem).where(ScheduledItem.participant_id == participant_id)
    for name, value in filters.items():
        stmt = stmt.where(getattr(ScheduledItem, name) == value)
    return list(session.scalars(stmt.order_by(ScheduledItem.due_at, ScheduledItem.slot_key)))


@dataclass
class RecordingDecider:
    """Delivers the walk option at every decision point and records each batch it saw."""

    batches: list[list[uuid.UUID]] = field(default_factory=list)
    deliver: bool = True

    def __call__(
        self, session: Session, clock: Clock, batch: Sequence[ScheduledItem]
    ) -> list[Delivery | None]:
        self.batches.append([item.id for item in batch])
        if not self.deliver:
            return [None for _ in batch]
        return [
            Delivery(
                decision_id=uuid.uuid4(),
                option_id="walk",
                title="Time for a short walk",
                body="A few minutes of gentle movement can ease stiffness.",
                deep_link="kairos://exercise/walk",
                data={"exercise_id": "walk"},
            )
            for _ in batch
        ]


def decide_nothing(
    session: Session, clock: Clock, items: Sequence[ScheduledItem]
) -> list[Delivery | None]:
    """A decider that delivers nothing, for scheduler tests that are not about deciding."""
    return [None for _ in items]


def worker(
    world: World,
    decider: DecideBatch | None = None,
    name: str = "w1",
    provider: PushProvider | None = None,
    **options: Any,
) -> Worker:
    """A worker on the world's database and clock, ticking every second; by default it
    decides like RecordingDecider and pushes through a LoggingProvider."""
    return Worker(
        world.session_factory,
        world.clock,
        tick_seconds=1,
        worker_id=name,
        decider=decider or RecordingDecider(),
        provider=provider or LoggingProvider(),
        **options,
    )


def add_device(world: World, person: Enrolled, push_token: str = "tok-1") -> None:  # noqa: S107
    """Register an Android phone for the participant, through the API."""
    response = world.client.post(
        "/v1/me/devices",
        json={"push_token": push_token, "platform": "android"},
        headers=person.headers,
    )
    assert response.status_code == 201, response.text


def fire_due(world: World, owner: str = "w", lease: timedelta = timedelta(minutes=2)) -> Settled:
    """One batch of due rows fired and decided (RecordingDecider), without sending the
    pushes: a sender that is down, or a worker that crashed after firing."""
    return run_due_batch(
        world.session_factory, world.clock, owner, RecordingDecider(), lease=lease, batch_size=10
    )


def run_until(world: World, w: Worker, until: datetime) -> None:
    """Jump the simulated clock from due time to due time, running the worker at each."""
    while True:
        with world.session_factory() as session:
            next_due = session.scalar(
                sa.select(sa.func.min(ScheduledItem.due_at)).where(
                    ScheduledItem.status == ItemStatus.planned,
                    ScheduledItem.due_at > world.clock.now(),
                )
            )
            next_send = session.scalar(
                sa.select(sa.func.min(Notification.send_at)).where(
                    Notification.status == NotificationStatus.pending,
                    Notification.send_at > world.clock.now(),
                )
            )
        candidates = [t for t in (next_due, next_send) if t is not None and t <= until]
        if not candidates:
            world.clock.set(until)
            w.run_pending()
            return
        world.clock.set(min(candidates))
        w.run_pending()
