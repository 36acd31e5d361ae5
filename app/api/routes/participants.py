import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from app.api.auth import AnyStaff, Coordinator, StaffCaller
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep, SettingsDep
from app.api.problems import problem_responses
from app.api.schemas.participants import (
    EnrollmentCodeOut,
    ParticipantCreate,
    ParticipantCreated,
    ParticipantOut,
    ParticipantPage,
    ParticipantUpdate,
    StatusChangeOut,
    StatusChangeRequest,
    TokensRevoked,
)
from app.audit.service import record, record_participant_read
from app.core.clock import Clock
from app.participants import enrollment, service
from app.participants.models import Participant, ParticipantStatus
from app.studies.service import get_study
from app.study_operations import participants as operations

router = APIRouter(
    prefix="/v1/studies/{study_id}/participants",
    tags=["participants"],
    responses=problem_responses(401, 403, 404, 422),
)


def _load(session: Session, study_id: uuid.UUID, participant_id: uuid.UUID) -> Participant:
    return service.get_participant(session, get_study(session, study_id), participant_id)


def _audit_read(
    session: Session, clock: Clock, caller: StaffCaller, participant: Participant, what: str
) -> None:
    record_participant_read(
        session, clock, caller.actor, participant.id, participant.study_id, what
    )
    session.commit()


@router.post(
    "",
    status_code=201,
    response_model=ParticipantCreated,
    summary="Create a participant and their enrollment code",
    responses=problem_responses(409),
)
def create_participant(
    study_id: uuid.UUID,
    body: ParticipantCreate,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ParticipantCreated:
    """Creates an `invited` participant and returns a one-time enrollment code.

    Give the code to the participant; the phone app exchanges it for its token with
    `POST /v1/enroll`. The code is shown only in this response and expires after
    `KAIROS_ENROLLMENT_CODE_TTL_HOURS` (14 days by default). Roles: coordinator, admin.
    """
    study = get_study(session, study_id)
    participant, code, expires_at = operations.create_participant(
        session,
        clock,
        caller.actor,
        study,
        timezone=body.timezone,
        code=body.code,
        attributes=body.attributes,
        secret_key=settings.secret_key,
        code_ttl_hours=settings.enrollment_code_ttl_hours,
    )
    session.commit()
    return ParticipantCreated(
        **ParticipantOut.model_validate(participant).model_dump(),
        enrollment_code=code,
        enrollment_code_expires_at=expires_at,
    )


@router.get("", response_model=ParticipantPage, summary="List a study's participants")
def list_participants(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
    status: Annotated[
        ParticipantStatus | None, Query(description="Only participants with this status.")
    ] = None,
    unreachable: Annotated[
        bool | None,
        Query(
            description="true: only participants whom pushes cannot reach (no enabled "
            "device); false: only reachable ones."
        ),
    ] = None,
) -> ParticipantPage:
    """Lists participants in creation order, a page at a time. The read is audited.

    `unreachable=true` lists those whose push tokens were all rejected (unregistered or
    invalid) or who have none: the study team should ask them to open the app.
    Roles: all staff.
    """
    study = get_study(session, study_id)
    items, next_cursor = service.list_participants(
        session, study, after=cursor, limit=limit, status=status, unreachable=unreachable
    )
    record(
        session,
        clock,
        caller.actor,
        "participant.list",
        resource_type="participant",
        study_id=study.id,
        detail={"count": len(items)},
    )
    session.commit()
    return ParticipantPage(
        items=[ParticipantOut.model_validate(p) for p in items], next_cursor=next_cursor
    )


@router.get("/{participant_id}", response_model=ParticipantOut, summary="Get a participant")
def get_participant(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
) -> ParticipantOut:
    """Returns one participant, with attributes and status. The read is audited.

    Roles: all staff.
    """
    participant = _load(session, study_id, participant_id)
    _audit_read(session, clock, caller, participant, "record")
    return ParticipantOut.model_validate(participant)


@router.patch(
    "/{participant_id}",
    response_model=ParticipantOut,
    summary="Update a participant",
    responses=problem_responses(409),
)
def update_participant(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    body: ParticipantUpdate,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> ParticipantOut:
    """Changes the code, time zone or attributes given; `attributes` is replaced whole.

    Status changes have their own endpoint, because they need a reason.
    Roles: coordinator, admin.
    """
    participant = _load(session, study_id, participant_id)
    operations.update_participant(session, clock, caller.actor, participant, body.changes())
    session.commit()
    return ParticipantOut.model_validate(participant)


@router.delete(
    "/{participant_id}",
    status_code=204,
    summary="Delete a participant who never enrolled",
    responses=problem_responses(409),
)
def delete_participant(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Deletes an `invited` participant (e.g. created by mistake).

    Once a participant has enrolled, their data must be kept: change their status to
    `withdrawn` instead. Roles: coordinator, admin.
    """
    participant = _load(session, study_id, participant_id)
    service.delete_participant(session, clock, caller.actor, participant)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/{participant_id}/status",
    response_model=ParticipantOut,
    summary="Change a participant's status",
    responses=problem_responses(409),
)
def change_status(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    body: StatusChangeRequest,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> ParticipantOut:
    """Pauses, resumes, withdraws or completes a participant, with a reason.

    Allowed: active -> paused / withdrawn / completed; paused -> active / withdrawn /
    completed; invited -> withdrawn. `invited` becomes `active` only by enrolling.
    `withdrawn` and `completed` are final; a withdrawn participant's app is locked out.
    Roles: coordinator, admin.
    """
    participant = _load(session, study_id, participant_id)
    operations.change_status(session, clock, caller.actor, participant, body.status, body.reason)
    session.commit()
    return ParticipantOut.model_validate(participant)


@router.get(
    "/{participant_id}/status-history",
    response_model=list[StatusChangeOut],
    summary="A participant's status history",
)
def status_history(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
) -> list[StatusChangeOut]:
    """Every status change, oldest first, with who made it and why. The read is audited.

    Roles: all staff.
    """
    participant = _load(session, study_id, participant_id)
    history = service.status_history(session, participant)
    _audit_read(session, clock, caller, participant, "status_history")
    return [StatusChangeOut.model_validate(h) for h in history]


@router.post(
    "/{participant_id}/enrollment-code",
    status_code=201,
    response_model=EnrollmentCodeOut,
    summary="Issue a new enrollment code",
    responses=problem_responses(409),
)
def new_enrollment_code(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> EnrollmentCodeOut:
    """Issues a fresh one-time code (lost code, new phone); the previous unused code stops working.

    Tokens already issued keep working; revoke them separately if the old phone is lost.
    Roles: coordinator, admin.
    """
    participant = _load(session, study_id, participant_id)
    code, expires_at = enrollment.issue_enrollment_code(
        session,
        clock,
        participant,
        secret_key=settings.secret_key,
        ttl_hours=settings.enrollment_code_ttl_hours,
    )
    record(
        session,
        clock,
        caller.actor,
        "participant.enrollment_code",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
    )
    session.commit()
    return EnrollmentCodeOut(enrollment_code=code, expires_at=expires_at)


@router.post(
    "/{participant_id}/tokens/revoke",
    response_model=TokensRevoked,
    summary="Revoke the participant's app tokens",
)
def revoke_tokens(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> TokensRevoked:
    """Signs the participant's app out everywhere (e.g. a lost phone).

    The app must enroll again with a new code. Roles: coordinator, admin.
    """
    participant = _load(session, study_id, participant_id)
    count = enrollment.revoke_all_tokens(session, clock, participant)
    record(
        session,
        clock,
        caller.actor,
        "participant.tokens_revoke",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"revoked": count},
    )
    session.commit()
    return TokensRevoked(revoked=count)
