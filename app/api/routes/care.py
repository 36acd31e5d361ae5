"""Care-team reviews, treatment phases and the inertia measures (docs/care-team.md)."""

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.alerts.models import AlertSend
from app.alerts.service import sends_of
from app.api.auth import AnyStaff, Coordinator
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.alerts import AlertSendOut
from app.api.schemas.care import (
    InertiaOut,
    PhaseChangeOut,
    PhaseChangeRequest,
    PhasesOut,
    ReviewCompletion,
    ReviewOut,
    ReviewPage,
)
from app.audit.service import record, record_participant_read
from app.care import inertia, phases, reviews
from app.care.models import Review, ReviewStatus
from app.participants.service import get_participant
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}",
    tags=["care"],
    responses=problem_responses(401, 403, 404, 422),
)


def _sends(session: Session, review_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[AlertSend]]:
    return sends_of(session, review_ids, of=AlertSend.review_id)


def _out(review: Review, status: ReviewStatus, sends: Sequence[AlertSend]) -> ReviewOut:
    fields = {c: getattr(review, c) for c in ReviewOut.model_fields if c not in ("status", "sends")}
    return ReviewOut.model_validate(
        {**fields, "status": status, "sends": [AlertSendOut.model_validate(s) for s in sends]}
    )


@router.get(
    "/reviews",
    response_model=ReviewPage,
    summary="Care-team reviews",
    description="Reviews of participants, due on the protocol's `reviews.every_days` cadence "
    "and at once when a flag listed in `reviews.on_flags` opens; `status=due` lists those "
    "due within their grace, `status=overdue` those past it (escalated to the next level "
    "of the care routes). Each carries its sends. The read is audited. Roles: all staff.",
)
def list_reviews(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
    status: Annotated[
        ReviewStatus | None,
        Query(description="upcoming, due, overdue or completed; all without it."),
    ] = None,
    participant_id: Annotated[
        uuid.UUID | None, Query(description="Only this participant's reviews.")
    ] = None,
) -> ReviewPage:
    study = get_study(session, study_id)
    now = clock.now()
    items, next_cursor = reviews.list_reviews(
        session,
        study,
        now,
        status=status,
        participant_id=participant_id,
        after=cursor,
        limit=limit,
    )
    sends = _sends(session, [r.id for r in items])
    record(
        session,
        clock,
        caller.actor,
        "reviews.read",
        resource_type="care_review",
        study_id=study.id,
        detail={"count": len(items), "status": status},
    )
    session.commit()
    return ReviewPage(
        items=[_out(r, reviews.status_of(r, now), sends.get(r.id, [])) for r in items],
        next_cursor=next_cursor,
    )


@router.post(
    "/reviews/{review_id}/complete",
    response_model=ReviewOut,
    summary="Complete a review",
    description="Records the review's outcome and note, once (409 if already completed). "
    "`maintain` needs a `reason` while the participant has an open non-response flag "
    "(restraint that is clinically right is not inertia, but it is stated); "
    "`change_phase` needs the `phase` to move to, which is applied at once (and is in the "
    "participant's phase history); `escalate` and `step_down` may carry one. Audited. "
    "Roles: coordinator, admin.",
    responses=problem_responses(409),
)
def complete_review(
    study_id: uuid.UUID,
    review_id: uuid.UUID,
    body: ReviewCompletion,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> ReviewOut:
    review = reviews.get_review(session, get_study(session, study_id), review_id)
    completion = reviews.Completion(
        body.outcome, body.note, body.reason, body.phase, body.end_fatigue_response
    )
    reviews.complete_review(session, clock, caller.actor, review, completion)
    session.commit()
    return _out(review, ReviewStatus.completed, _sends(session, [review.id]).get(review.id, []))


def _phases_out(session: Session, participant_id: uuid.UUID, state: phases.PhaseState) -> PhasesOut:
    return PhasesOut(
        participant_id=participant_id,
        phase=state.current,
        declared=list(state.declared),
        history=[PhaseChangeOut.model_validate(c) for c in state.history],
    )


@router.get(
    "/participants/{participant_id}/phase",
    response_model=PhasesOut,
    summary="A participant's treatment phase",
    description="The current treatment phase (stepped care), the phases the protocol "
    "declares, and every change with who made it and why. The read is audited. Roles: all "
    "staff.",
)
def get_phase(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
) -> PhasesOut:
    study = get_study(session, study_id)
    participant = get_participant(session, study, participant_id)
    state = phases.phase_state(session, participant)
    record_participant_read(session, clock, caller.actor, participant.id, study.id, "phase")
    session.commit()
    return _phases_out(session, participant.id, state)


@router.post(
    "/participants/{participant_id}/phase",
    response_model=PhasesOut,
    summary="Move a participant to another treatment phase",
    description="A clinician's decision: the participant's decisions from now on may only "
    "deliver the options the phase allows, under its daily prompt cap, and rules see it as "
    "`phase`. The reason is required; the change is added to the history (never "
    "overwritten) and audited. 422 naming `phase` for a phase the protocol does not "
    "declare; 409 when it is the current one. Roles: coordinator, admin.",
    responses=problem_responses(409),
)
def move_phase(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    body: PhaseChangeRequest,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> PhasesOut:
    study = get_study(session, study_id)
    participant = get_participant(session, study, participant_id)
    phases.change_phase(session, clock, caller.actor, participant, body.phase, body.reason)
    session.commit()
    return _phases_out(session, participant.id, phases.phase_state(session, participant))


@router.get(
    "/inertia",
    response_model=InertiaOut,
    summary="Therapeutic inertia measures",
    description="Over the study's non-response flags: how many were followed by a "
    "completed review and how long it took (hours from the flag), and the share followed "
    "by a plan change (a review outcome other than maintain, or a phase change) within N "
    "days (`within_days`; default each protocol's `reviews.plan_change_within_days`). "
    "Flags whose N days have not passed and whose plan has not changed yet are not "
    "counted in the share. Per flag, in the `flags` export. Roles: all staff.",
)
def get_inertia(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    within_days: Annotated[
        int | None, Query(ge=1, le=3660, description="N: days for a plan change to count.")
    ] = None,
) -> InertiaOut:
    study = get_study(session, study_id)
    summary = inertia.summarize(
        inertia.follow_ups(session, study, clock.now(), within_days=within_days)
    )
    record(session, clock, caller.actor, "inertia.read", resource_type="study", study_id=study.id)
    session.commit()
    return InertiaOut(
        within_days=within_days,
        non_response_flags=summary.non_response_flags,
        reviewed=summary.reviewed,
        median_hours_to_review=summary.median_hours_to_review,
        mean_hours_to_review=summary.mean_hours_to_review,
        decided=summary.decided,
        plan_changed_in_time=summary.plan_changed_in_time,
        plan_change_share=summary.plan_change_share,
    )
