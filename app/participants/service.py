import secrets
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError, NotFoundError
from app.core.pagination import keyset_page
from app.participants.models import Participant, ParticipantStatus, ParticipantStatusChange
from app.studies.models import Study


def get_participant(session: Session, study: Study, participant_id: uuid.UUID) -> Participant:
    participant = session.get(Participant, participant_id)
    # A participant of another study is reported as missing, not as forbidden.
    if participant is None or participant.study_id != study.id:
        raise NotFoundError(
            f"participant {participant_id} does not exist in study {study.id}",
            code="participant_not_found",
        )
    return participant


def list_participants(
    session: Session,
    study: Study,
    *,
    after: uuid.UUID | None,
    limit: int,
    status: ParticipantStatus | None = None,
    unreachable: bool | None = None,
) -> tuple[Sequence[Participant], uuid.UUID | None]:
    stmt = sa.select(Participant).where(Participant.study_id == study.id)
    if status is not None:
        stmt = stmt.where(Participant.status == status)
    if unreachable is not None:
        column = Participant.unreachable_since
        stmt = stmt.where(column.is_not(None) if unreachable else column.is_(None))
    return keyset_page(session, stmt, Participant.id, after=after, limit=limit)


def generate_code() -> str:
    return "P-" + secrets.token_hex(3).upper()


def ensure_code_free(session: Session, study: Study, code: str) -> None:
    taken = session.scalar(
        sa.select(Participant.id).where(Participant.study_id == study.id, Participant.code == code)
    )
    if taken is not None:
        raise ConflictError(
            f"participant code '{code}' is already used in this study",
            field="code",
            code="participant_code_taken",
        )


def status_history(session: Session, participant: Participant) -> Sequence[ParticipantStatusChange]:
    return session.scalars(
        sa.select(ParticipantStatusChange)
        .where(ParticipantStatusChange.participant_id == participant.id)
        .order_by(ParticipantStatusChange.changed_at, ParticipantStatusChange.id)
    ).all()


def delete_participant(
    session: Session, clock: Clock, actor: Actor, participant: Participant
) -> None:
    if participant.status != ParticipantStatus.invited:
        raise ConflictError(
            "only a participant who never enrolled can be deleted; change the status to "
            "'withdrawn' instead so the data collected so far is kept",
            code="participant_has_enrolled",
        )
    record(
        session,
        clock,
        actor,
        "participant.delete",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"code": participant.code},
    )
    session.delete(participant)
