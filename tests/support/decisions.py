"""Helpers for decision engine tests: a study with a protocol through the API, and data
rows (EMA, wearables, prompts, scheduled decision points) inserted directly."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import yaml

from app.core.ids import new_id
from app.decision_rules.engine import decide_batch
from app.decision_rules.models import Decision
from app.ema.models import EmaAnswer, EmaResponse
from app.notifications.delivery import Delivery
from app.notifications.models import Notification, NotificationKind
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem
from app.sensing.models import WearableSummary
from app.staff.models import Role
from tests.conftest import World

EXAMPLE = example_text(CHRONIC_PAIN_JITAI)
# Attributes valid for the example protocol (PAI recommends pain_acceptance: nociplastic).
ATTRIBUTES: dict[str, Any] = {
    "trauma_history": False,
    "pain_phenotype": "nociplastic",
    "age": 40,
    "baseline_interference": 5,
}


def example_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE)
    return document


class Trial:
    """One study with one protocol; participants and data for engine tests."""

    def __init__(self, world: World, protocol: str | Mapping[str, Any] = EXAMPLE) -> None:
        self.world = world
        self.admin = world.staff(Role.admin)
        self.study_id = world.study()["id"]
        body = protocol if isinstance(protocol, str) else yaml.safe_dump(dict(protocol))
        response = world.client.post(
            f"/v1/studies/{self.study_id}/protocols",
            content=body,
            headers={**self.admin, "Content-Type": "application/yaml"},
        )
        assert response.status_code == 201, response.text
        self._sequence = 0

    @classmethod
    def of(cls, world: World, study_id: str) -> "Trial":
        """A Trial for a study set up by the test itself."""
        trial = cls.__new__(cls)
        trial.world, trial.admin, trial.study_id = world, world.staff(Role.admin), study_id
        trial._sequence = 0
        return trial

    def participant(
        self,
        attributes: Mapping[str, Any] | None = None,
        *,
        enrolled_at: datetime | None = None,
        timezone: str = "Europe/Berlin",
    ) -> uuid.UUID:
        """Created through the API; enrolled at ``enrolled_at`` (default: now)."""
        clock = self.world.clock
        saved = clock.now()
        if enrolled_at is not None:
            clock.set(enrolled_at)
        created = self.world.participant(
            self.study_id,
            timezone=timezone,
            attributes=dict(ATTRIBUTES if attributes is None else attributes),
        )
        self.world.enroll(created["enrollment_code"])
        clock.set(saved)
        return uuid.UUID(created["id"])

    def item(self, participant: uuid.UUID, point: str, due_at: datetime) -> ScheduledItem:
        self._sequence += 1
        with self.world.session_factory() as session:
            row = ScheduledItem(
                id=new_id(),
                participant_id=participant,
                study_id=uuid.UUID(self.study_id),
                protocol_version=1,
                kind=ItemKind.decision_point,
                slot_key=f"dp:{point}:{due_at.isoformat()}:{self._sequence}",
                source_id=point,
                sequence=self._sequence,
                due_at=due_at,
                expires_at=due_at + timedelta(minutes=10),
                status=ItemStatus.claimed,
                created_at=due_at,
                updated_at=due_at,
            )
            session.add(row)
            session.commit()
            return row

    def ema(
        self,
        participant: uuid.UUID,
        questionnaire: str,
        answers: Mapping[str, Any],
        answered_at: datetime,
        received_at: datetime | None = None,
    ) -> None:
        with self.world.session_factory() as session:
            response = EmaResponse(
                id=new_id(),
                participant_id=participant,
                study_id=uuid.UUID(self.study_id),
                client_id=uuid.uuid4().hex,
                questionnaire_id=questionnaire,
                questionnaire_version=1,
                protocol_version=1,
                answered_at=answered_at,
                utc_offset_minutes=60,
                received_at=received_at or answered_at,
            )
            session.add(response)
            session.flush()
            for item_id, value in answers.items():
                numeric = float(value) if isinstance(value, int | float) else None
                session.add(
                    EmaAnswer(
                        response_id=response.id,
                        participant_id=participant,
                        questionnaire_id=questionnaire,
                        item_id=item_id,
                        answered_at=answered_at,
                        value=value,
                        numeric_value=numeric,
                    )
                )
            session.commit()

    def wearable(
        self,
        participant: uuid.UUID,
        metric: str,
        start: datetime,
        value: float,
        *,
        hours: int = 1,
        received_at: datetime | None = None,
    ) -> None:
        end = start + timedelta(hours=hours)
        with self.world.session_factory() as session:
            session.add(
                WearableSummary(
                    participant_id=participant,
                    study_id=uuid.UUID(self.study_id),
                    metric=metric,
                    unit="count",
                    start_at=start,
                    end_at=end,
                    value=value,
                    received_at=received_at or end,
                    updated_at=received_at or end,
                )
            )
            session.commit()

    def prompt(self, participant: uuid.UUID, created_at: datetime, *, status: str = "sent") -> None:
        """An intervention notification, as the scheduler writes one for a delivery."""
        with self.world.session_factory() as session:
            session.add(
                Notification(
                    participant_id=participant,
                    study_id=uuid.UUID(self.study_id),
                    kind=NotificationKind.intervention,
                    title="t",
                    body="b",
                    data={},
                    created_at=created_at,
                    send_at=created_at,
                    status=status,
                )
            )
            session.commit()

    def decide(
        self, items: Sequence[ScheduledItem], *, at: datetime | None = None
    ) -> list[tuple[Decision, Delivery | None]]:
        """Run the engine on the items at ``at`` (default: the first item's due time),
        committing like the scheduler does, notifications included."""
        clock = self.world.clock
        clock.set(at or items[0].due_at)
        with self.world.session_factory() as session:
            deliveries = decide_batch(session, clock, items)
            for item, delivery in zip(items, deliveries, strict=True):
                if delivery is not None:
                    session.add(
                        Notification(
                            participant_id=item.participant_id,
                            study_id=item.study_id,
                            kind=NotificationKind.intervention,
                            scheduled_item_id=item.id,
                            decision_id=delivery.decision_id,
                            option_id=delivery.option_id,
                            title=delivery.title,
                            body=delivery.body,
                            deep_link=delivery.deep_link,
                            data=delivery.data,
                            created_at=clock.now(),
                            send_at=clock.now(),
                        )
                    )
            session.commit()
            ids = [item.id for item in items]
            rows = {
                d.scheduled_item_id: d
                for d in session.scalars(
                    sa.select(Decision).where(Decision.scheduled_item_id.in_(ids))
                )
            }
        return [(rows[item.id], d) for item, d in zip(items, deliveries, strict=True)]

    def decide_one(
        self, participant: uuid.UUID, point: str, at: datetime
    ) -> tuple[Decision, Delivery | None]:
        return self.decide([self.item(participant, point, at)])[0]
