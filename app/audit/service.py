"""Recording who did what. Written in the same transaction as the action it describes."""

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.core.clock import Clock

ActorKind = Literal["staff", "participant", "cli", "system"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str | None = None
    role: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind


CLI_ACTOR = Actor("cli")
SYSTEM_ACTOR = Actor("system")


def record(
    session: Session,
    clock: Clock,
    actor: Actor,
    action: str,
    *,
    resource_type: str,
    resource_id: uuid.UUID | str | None = None,
    study_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        occurred_at=clock.now(),
        actor=actor.label,
        actor_role=actor.role,
        action=action,
        study_id=study_id,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        detail=detail or {},
    )
    session.add(event)
    return event


def record_participant_read(
    session: Session,
    clock: Clock,
    actor: Actor,
    participant_id: uuid.UUID,
    study_id: uuid.UUID,
    what: str,
    *,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """A staff read of one participant's data ("participant.read.<what>")."""
    return record(
        session,
        clock,
        actor,
        f"participant.read.{what}",
        resource_type="participant",
        resource_id=participant_id,
        study_id=study_id,
        detail=detail,
    )
