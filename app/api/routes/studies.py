import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.auth import Admin, AnyStaff, Coordinator
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.studies import StudyCreate, StudyOut, StudyPage, StudyUpdate
from app.studies import service
from app.studies.models import StudyStatus
from app.study_operations import studies as operations

router = APIRouter(
    prefix="/v1/studies", tags=["studies"], responses=problem_responses(401, 403, 422)
)


@router.post(
    "",
    status_code=201,
    response_model=StudyOut,
    summary="Create a study",
    responses=problem_responses(409),
)
def create_study(
    body: StudyCreate, caller: Coordinator, session: SessionDep, clock: ClockDep
) -> StudyOut:
    """Creates a study. The slug must be unique; a study starts as `draft` unless told otherwise.

    Roles: coordinator, admin.
    """
    study = service.create_study(session, clock, caller.actor, **body.model_dump())
    session.commit()
    return StudyOut.model_validate(study)


@router.get("", response_model=StudyPage, summary="List studies")
def list_studies(
    caller: AnyStaff,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
    status: Annotated[
        StudyStatus | None, Query(description="Only studies with this status.")
    ] = None,
) -> StudyPage:
    """Lists studies in creation order, a page at a time.

    Roles: all staff.
    """
    items, next_cursor = service.list_studies(session, after=cursor, limit=limit, status=status)
    return StudyPage(items=[StudyOut.model_validate(s) for s in items], next_cursor=next_cursor)


@router.get(
    "/{study_id}", response_model=StudyOut, summary="Get a study", responses=problem_responses(404)
)
def get_study(study_id: uuid.UUID, caller: AnyStaff, session: SessionDep) -> StudyOut:
    """Returns one study.

    Roles: all staff.
    """
    return StudyOut.model_validate(service.get_study(session, study_id))


@router.patch(
    "/{study_id}",
    response_model=StudyOut,
    summary="Update a study",
    responses=problem_responses(404, 409),
)
def update_study(
    study_id: uuid.UUID,
    body: StudyUpdate,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> StudyOut:
    """Changes the fields given (name, description, slug, status); the others stay as they are.

    Closing a study (`status: closed`) stops new participants and enrollments. A study
    whose protocol has escalation items becomes active (`status: active`) only once its
    care team is configured (routes, or a poll-only declaration: PUT …/care-team); 409
    `care_routes_required` otherwise.
    Roles: coordinator, admin.
    """
    study = service.get_study(session, study_id)
    operations.update_study(session, clock, caller.actor, study, body.changes())
    session.commit()
    return StudyOut.model_validate(study)


@router.delete(
    "/{study_id}",
    status_code=204,
    summary="Delete an empty study",
    responses=problem_responses(404, 409),
)
def delete_study(
    study_id: uuid.UUID, caller: Admin, session: SessionDep, clock: ClockDep
) -> Response:
    """Deletes a study that has no participants (e.g. one created by mistake).

    A study with participants cannot be deleted, because their data must be kept: close it
    instead. Roles: admin.
    """
    study = service.get_study(session, study_id)
    operations.delete_study(session, clock, caller.actor, study)
    session.commit()
    return Response(status_code=204)
