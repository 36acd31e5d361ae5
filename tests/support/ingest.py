"""Helpers for the ingestion tests: a study on the chronic-pain protocol, enrolled phones,
EMA prompts as the scheduler would write them, and a recorder of participant events."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.clock import Clock
from app.core.events import ParticipantEvent, subscribe, unsubscribe
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.protocols.timing import Event
from app.scheduling.models import ItemKind, ScheduledItem
from app.staff.models import Role
from tests.conftest import World, bearer


@dataclass
class Phone:
    """An enrolled participant's app."""

    client: TestClient
    participant: dict[str, Any]
    token: str
    study_id: str

    @property
    def id(self) -> str:
        return str(self.participant["id"])

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def post(self, path: str, items: list[Any]) -> dict[str, Any]:
        response = self.client.post(f"/v1/me/{path}", json={"items": items}, headers=self.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def pain_study(world: World) -> str:
    study = world.study()
    uploaded = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=example_text(CHRONIC_PAIN_JITAI),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 201, uploaded.text
    return str(study["id"])


def phone(world: World, study_id: str) -> Phone:
    participant, token = world.enrolled_participant(
        study_id,
        attributes={
            "trauma_history": False,
            "pain_phenotype": "nociplastic",
            "age": 40,
            "baseline_interference": 6,
        },
    )
    return Phone(world.client, participant, token, study_id)


def ema_prompt(
    world: World,
    phone: Phone,
    *,
    questionnaire: str = "morning",
    due_in: timedelta = timedelta(0),
    expires_after: timedelta = timedelta(minutes=90),
) -> uuid.UUID:
    """An EMA prompt row, as the scheduler would have written it."""
    now = world.clock.now()
    with world.session_factory() as session:
        item = ScheduledItem(
            participant_id=uuid.UUID(phone.id),
            study_id=uuid.UUID(phone.study_id),
            protocol_version=1,
            kind=ItemKind.ema_prompt,
            slot_key=f"ema:{questionnaire}:{uuid.uuid4().hex}",
            source_id=questionnaire,
            questionnaire_id=questionnaire,
            due_at=now + due_in,
            expires_at=now + due_in + expires_after,
            created_at=now,
            updated_at=now,
        )
        session.add(item)
        session.commit()
        return item.id


def morning(answered_at: datetime, client_id: str | None = None, **answers: Any) -> dict[str, Any]:
    return {
        "client_id": client_id or uuid.uuid4().hex,
        "questionnaire_id": "morning",
        "questionnaire_version": 1,
        "answered_at": answered_at.isoformat(),
        "answers": {
            "pain": 5,
            "interference": 4,
            "acceptance": 6,
            "mood": "neutral",
            "sleep_quality": 7,
            "sleep_duration": 420,
            **answers,
        },
    }


def evening(answered_at: datetime, **answers: Any) -> dict[str, Any]:
    return {
        "client_id": uuid.uuid4().hex,
        "questionnaire_id": "evening",
        "questionnaire_version": 1,
        "answered_at": answered_at.isoformat(),
        "answers": {
            "pain": 5,
            "interference": 4,
            "acceptance": 6,
            "mood": "low",
            "self_harm": False,
            **answers,
        },
    }


@dataclass
class Recorder:
    events: list[ParticipantEvent] = field(default_factory=list)

    def __call__(self, session: Session, clock: Clock, event: ParticipantEvent) -> None:
        assert session.in_transaction(), "listeners run inside the publisher's transaction"
        self.events.append(event)

    def kinds(self) -> list[Event]:
        return [e.kind for e in self.events]


@contextmanager
def recording(*kinds: Event) -> Iterator[Recorder]:
    recorder = Recorder()
    for kind in kinds or tuple(Event):
        subscribe(kind, recorder)
    try:
        yield recorder
    finally:
        for kind in kinds or tuple(Event):
            unsubscribe(kind, recorder)


def response_to(questionnaire: str, answered_at: datetime, **answers: Any) -> dict[str, Any]:
    """One EMA response to version 1 of ``questionnaire`` with exactly these answers."""
    return {
        "client_id": uuid.uuid4().hex,
        "questionnaire_id": questionnaire,
        "questionnaire_version": 1,
        "answered_at": answered_at.isoformat(),
        "answers": answers,
    }
