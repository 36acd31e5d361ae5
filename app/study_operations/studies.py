"""Removing a study: only while nobody has joined it, since participants' data is kept."""

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError
from app.participants.models import Participant
from app.studies.models import Study


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
