import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError, NotFoundError
from app.core.pagination import keyset_page
from app.decision_rules.onboarding import onboard
from app.participants.enrollment import issue_enrollment_code, supersede_live_codes
from app.participants.models import Participant, ParticipantStatus, ParticipantStatusChange
from app.participants.status import set_status, transition_problem
from app.protocols.versions import assign_active_version
from app.scheduling.planning import replan
from app.studies.models import Study, StudyStatus


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


def _generate_code() -> str:
    return "P-" + secrets.token_hex(3).upper()


def _ensure_code_free(session: Session, study: Study, code: str) -> None:
    taken = session.scalar(
        sa.select(Participant.id).where(Participant.study_id == study.id, Participant.code == code)
    )
    if taken is not None:
        raise ConflictError(
            f"participant code '{code}' is already used in this study",
            field="code",
            code="participant_code_taken",
        )


def create_participant(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    *,
    timezone: str,
    secret_key: str,
    code_ttl_hours: int,
    code: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> tuple[Participant, str, datetime]:
    """Create an invited participant; returns it, its one-time enrollment code and expiry."""
    if study.status == StudyStatus.closed:
        raise ConflictError("the study is closed to new participants", code="study_closed")
    if code is None:
        code = _generate_code()
    _ensure_code_free(session, study, code)
    now = clock.now()
    participant = Participant(
        study_id=study.id,
        code=code,
        timezone=timezone,
        status=ParticipantStatus.invited,
        status_changed_at=now,
        attributes=attributes or {},
        created_at=now,
        updated_at=now,
    )
    session.add(participant)
    session.flush()
    assign_active_version(session, clock, participant)
    # Attributes are checked against the protocol the participant follows, and the PAI
    # (when the protocol declares one) is scored now, at onboarding.
    onboard(session, clock, participant, reason="created")
    session.add(
        ParticipantStatusChange(
            participant_id=participant.id,
            from_status=None,
            to_status=participant.status,
            reason="created",
            changed_by=actor.label,
            changed_at=now,
        )
    )
    record(
        session,
        clock,
        actor,
        "participant.create",
        resource_type="participant",
        resource_id=participant.id,
        study_id=study.id,
        detail={"code": code},
    )
    code_, expires_at = issue_enrollment_code(
        session, clock, participant, secret_key=secret_key, ttl_hours=code_ttl_hours
    )
    return participant, code_, expires_at


def update_participant(
    session: Session, clock: Clock, actor: Actor, participant: Participant, changes: dict[str, Any]
) -> Participant:
    if "code" in changes and changes["code"] != participant.code:
        study = session.get_one(Study, participant.study_id)
        _ensure_code_free(session, study, changes["code"])
    moved = "timezone" in changes and changes["timezone"] != participant.timezone
    for field, value in changes.items():
        setattr(participant, field, value)
    participant.updated_at = clock.now()
    if moved:
        replan(session, clock.now(), participant, f"time zone changed to {participant.timezone}")
    if "attributes" in changes:
        onboard(session, clock, participant, reason="attributes_updated")
    # Attribute values may be sensitive (e.g. trauma history): log which, not what.
    record(
        session,
        clock,
        actor,
        "participant.update",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"fields": sorted(changes)},
    )
    return participant


def change_status(
    session: Session,
    clock: Clock,
    actor: Actor,
    participant: Participant,
    target: ParticipantStatus,
    reason: str,
) -> Participant:
    problem = transition_problem(participant.status, target)
    if problem is not None:
        raise ConflictError(problem, field="status", code="status_transition_not_allowed")
    set_status(session, clock, actor, participant, target, reason)
    replan(session, clock.now(), participant, f"participant {target}: {reason}")
    if target in (ParticipantStatus.withdrawn, ParticipantStatus.completed):
        supersede_live_codes(session, clock, participant)
    record(
        session,
        clock,
        actor,
        "participant.status_change",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"to": str(target), "reason": reason},
    )
    return participant


def update_own_record(
    session: Session, clock: Clock, participant: Participant, changes: dict[str, Any]
) -> Participant:
    """The app reports changes to its participant's record (a new time zone after travel)."""
    moved = "timezone" in changes and changes["timezone"] != participant.timezone
    for field, value in changes.items():
        setattr(participant, field, value)
    participant.updated_at = clock.now()
    if moved:
        replan(session, clock.now(), participant, f"time zone changed to {participant.timezone}")
    return participant


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
