"""Changing a study (activating it only when its crisis alerts reach somebody) and removing
one (only while nobody has joined it, since participants' data is kept)."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.routing import ensure_routed
from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError
from app.participants.models import Participant
from app.protocols.store import protocol_of_version
from app.studies import service
from app.studies.models import Study, StudyStatus


def update_study(
    session: Session, clock: Clock, actor: Actor, study: Study, changes: dict[str, Any]
) -> Study:
    """Change a study's fields; making it active needs its escalation alerts routed."""
    if changes.get("status") == StudyStatus.active and study.status != StudyStatus.active:
        version = study.active_protocol_version
        protocol = None if version is None else protocol_of_version(session, study.id, version)
        ensure_routed(session, study, protocol)
    return service.update_study(session, clock, actor, study, changes)


def delete_study(session: Session, clock: Clock, actor: Actor, study: Study) -> None:
    has_participants = session.scalar(
        sa.select(sa.exists().where(Participant.study_id == study.id))
    )
    if has_participants:
        raise ConflictError(
            "a study with participants cannot be deleted (their data must be kept); "
            "set its status to 'closed' instead",
            code="study_has_participants",
        )
    record(
        session,
        clock,
        actor,
        "study.delete",
        resource_type="study",
        resource_id=study.id,
        study_id=study.id,
        detail={"slug": study.slug},
    )
    session.delete(study)
