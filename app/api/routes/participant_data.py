"""Staff review of a participant's data: EMA responses, wearable summaries, engagement events."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.api.auth import AnyStaff, StaffCaller
from app.api.deps import ClockDep, SessionDep
from app.api.problems import problem_responses
from app.api.routes.me_data import (
    PageQuery,
    event_out,
    response_out,
    summary_out,
)
from app.api.schemas.common import Text
from app.api.schemas.participant_data import (
    EmaResponsePage,
    EngagementEventPage,
    WearableSummaryPage,
)
from app.audit.service import record_participant_read
from app.core.clock import Clock
from app.ema.history import list_responses
from app.engagement.history import list_events
from app.engagement.models import EngagementKind
from app.participants.models import Participant
from app.participants.service import get_participant
from app.protocols.tailoring import WearableMetric
from app.sensing.history import list_summaries
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}/participants/{participant_id}",
    tags=["participant data"],
    responses=problem_responses(401, 403, 404, 422),
)


def _load(
    session: Session,
    clock: Clock,
    caller: StaffCaller,
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    what: str,
) -> Participant:
    participant = get_participant(session, get_study(session, study_id), participant_id)
    record_participant_read(
        session, clock, caller.actor, participant.id, participant.study_id, what
    )
    return participant


@router.get(
    "/ema-responses",
    response_model=EmaResponsePage,
    summary="A participant's EMA responses",
    description="Responses with their answers, in the order received, a page at a time; "
    "filter by the time answered and the questionnaire. The read is audited. Roles: all "
    "staff.",
)
def staff_ema_responses(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    page: PageQuery,
    questionnaire_id: Annotated[
        Text | None, Query(max_length=64, description="Only this questionnaire.")
    ] = None,
) -> EmaResponsePage:
    participant = _load(session, clock, caller, study_id, participant_id, "ema_responses")
    items, next_cursor = list_responses(
        session, participant, page, questionnaire_id=questionnaire_id
    )
    session.commit()
    return EmaResponsePage(items=[response_out(r) for r in items], next_cursor=next_cursor)


@router.get(
    "/wearables",
    response_model=WearableSummaryPage,
    summary="A participant's wearable summaries",
    description="Summaries in normalized units, in the order first received, a page at a "
    "time; filter by metric and by the end of the period. The read is audited. Roles: all "
    "staff.",
)
def staff_wearables(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    page: PageQuery,
    metric: Annotated[WearableMetric | None, Query(description="Only this metric.")] = None,
) -> WearableSummaryPage:
    participant = _load(session, clock, caller, study_id, participant_id, "wearables")
    items, next_cursor = list_summaries(session, participant, page, metric=metric)
    session.commit()
    return WearableSummaryPage(items=[summary_out(s) for s in items], next_cursor=next_cursor)


@router.get(
    "/events",
    response_model=EngagementEventPage,
    summary="A participant's engagement events",
    description="Prompt and exercise events and helpfulness ratings, in the order received, "
    "a page at a time; filter by kind and by when they occurred. The read is audited. "
    "Roles: all staff.",
)
def staff_events(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    page: PageQuery,
    kind: Annotated[EngagementKind | None, Query(description="Only this kind.")] = None,
) -> EngagementEventPage:
    participant = _load(session, clock, caller, study_id, participant_id, "events")
    items, next_cursor = list_events(session, participant, page, kind=kind)
    session.commit()
    return EngagementEventPage(items=[event_out(e) for e in items], next_cursor=next_cursor)
