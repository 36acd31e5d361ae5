"""Staff review of a participant's data (EMA responses, wearable summaries, engagement
events, the planned schedule) and the pilot tools (a test push)."""

import uuid
from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.api.auth import AnyStaff, Coordinator, StaffCaller
from app.api.deps import ClockDep, PushProviderDep, SessionDep
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
from app.api.schemas.pilot import PlannedItemOut, PlannedSchedule, TestPushDeviceOut, TestPushOut
from app.audit.service import record, record_participant_read
from app.core.clock import Clock
from app.ema.history import list_responses
from app.engagement.history import list_events
from app.engagement.models import EngagementKind
from app.notifications.models import AttemptOutcome
from app.notifications.test_push import send_test_push
from app.participants.models import Participant
from app.participants.service import get_participant
from app.protocols.tailoring import WearableMetric
from app.scheduling.upcoming import upcoming
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


@router.get("/schedule", response_model=PlannedSchedule, summary="A participant's planned schedule")
def planned_schedule(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    days: Annotated[int, Query(ge=1, le=28, description="How many days ahead, from now.")] = 7,
) -> PlannedSchedule:
    """The EMA prompts, decision points and reminders still to fire in the coming days, in
    UTC and in the participant's own time zone, to check times and zones before and during
    a pilot. Only what is planned so far is shown (the worker plans a few days ahead).
    The read is audited. Roles: all staff.
    """
    participant = _load(session, clock, caller, study_id, participant_id, "schedule")
    start = clock.now()
    end = start + timedelta(days=days)
    zone = ZoneInfo(participant.timezone)
    stored = PlannedItemOut.model_fields.keys() - {"local_due_at"}
    items = [
        PlannedItemOut(
            local_due_at=item.due_at.astimezone(zone), **{f: getattr(item, f) for f in stored}
        )
        for item in upcoming(session, participant.id, start, end)
    ]
    session.commit()
    return PlannedSchedule(timezone=participant.timezone, start=start, end=end, items=items)


@router.post("/test-push", response_model=TestPushOut, summary="Send a test push now")
def test_push(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
    provider: PushProviderDep,
) -> TestPushOut:
    """Sends one test notification to each of the participant's enabled devices now,
    through the real push channel, and returns each device's outcome. It is not study data:
    nothing enters the outbox or the decision log. A token the channel reports as no longer
    valid disables its device (as a real push would). Audited. Roles: coordinator, admin.
    """
    participant = get_participant(session, get_study(session, study_id), participant_id)
    outcomes = send_test_push(session, clock, participant, provider)
    devices = [
        TestPushDeviceOut(
            device_id=device.id,
            platform=device.platform,
            outcome=result.outcome,
            error_code=result.error_code,
            response=result.response,
            device_disabled=result.outcome is AttemptOutcome.invalid_token,
        )
        for device, result in outcomes
    ]
    record(
        session,
        clock,
        caller.actor,
        "participant.test_push",
        resource_type="participant",
        resource_id=participant.id,
        study_id=participant.study_id,
        detail={"outcomes": [d.outcome for d in devices]},
    )
    session.commit()
    return TestPushOut(channel=provider.name, devices=devices)
