import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import AnyStaff
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.decisions import (
    DecisionOut,
    DecisionPage,
    EngagementOut,
    OptionConsideredOut,
    PreviewRequest,
    PreviewResponse,
)
from app.audit.service import record_participant_read
from app.core.errors import ConflictError
from app.decision_rules.evaluation import WEEKDAYS
from app.decision_rules.history import DecisionRecord, decision_history
from app.decision_rules.preview import PreviewInput, preview
from app.participants.service import get_participant
from app.protocols.store import get_version, load_protocol
from app.studies.service import get_study

router = APIRouter(tags=["decisions"], responses=problem_responses(401, 403, 404, 422))


def _out(item: DecisionRecord) -> DecisionOut:
    d = item.decision
    return DecisionOut(
        id=d.id,
        participant_id=d.participant_id,
        decision_point_id=d.decision_point_id,
        decision_index=d.decision_index,
        planned_at=d.planned_at,
        decided_at=d.decided_at,
        local_time=d.local_time,
        timezone=d.timezone,
        protocol_version=d.protocol_version,
        study_day=d.study_day,
        stage=d.stage,
        track=d.track,
        available=d.available,
        unavailable_reason=d.unavailable_reason,
        tailoring=d.tailoring,
        tailoring_defaulted=d.tailoring_defaulted,
        pai_recommendation=d.pai_recommendation,
        rule_id=d.rule_id,
        declared_probabilities=d.declared_probabilities,
        excluded=d.excluded,
        probabilities=d.probabilities,
        randomized=d.randomized,
        seed=d.seed,
        draw=d.draw,
        option_id=d.option_id,
        probability=d.probability,
        note=d.note,
        fallback=d.fallback,
        error=d.error,
        learning=d.learning,
        notification_id=item.notification_id,
        delivery_status=item.delivery_status,
        sent_at=item.sent_at,
        engagement=[EngagementOut(kind=e.kind, occurred_at=e.occurred_at) for e in item.engagement],
        outcomes=item.outcomes,
    )


@router.get(
    "/v1/studies/{study_id}/participants/{participant_id}/decisions",
    response_model=DecisionPage,
    summary="A participant's decision history",
)
def list_decisions(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
) -> DecisionPage:
    """Every decision point of the participant, available or not, oldest first: the
    tailoring snapshot, availability and its reason, the rule, every option's probability,
    the seed and draw, the option chosen, fallback and error, the push created with its
    delivery status and engagement, and the proximal outcomes (null while their window is
    still open). See docs/decisions-engine.md. The read is audited.

    Roles: all staff (researchers, coordinators, admins).
    """
    participant = get_participant(session, get_study(session, study_id), participant_id)
    items, next_cursor = decision_history(
        session, participant, now=clock.now(), after=cursor, limit=limit
    )
    record_participant_read(
        session,
        clock,
        caller.actor,
        participant.id,
        participant.study_id,
        "decisions",
        detail={"count": len(items)},
    )
    session.commit()
    return DecisionPage(items=[_out(i) for i in items], next_cursor=next_cursor)


@router.post(
    "/v1/studies/{study_id}/decisions/preview",
    response_model=PreviewResponse,
    summary="Preview a decision of the study's protocol",
    responses=problem_responses(409),
)
def preview_decision(
    study_id: uuid.UUID,
    body: PreviewRequest,
    caller: AnyStaff,
    session: SessionDep,
) -> PreviewResponse:
    """Evaluates the study's active protocol (or `protocol_version`) for the tailoring
    values, attributes, decision point and local time given, exactly as the engine would:
    availability and its reason, the rule that fires, the probabilities after exclusions,
    preferences and bounds, and every option with its contraindication flag. Nothing is
    stored and nothing is drawn.

    Every tailoring variable not read from attributes must be given (null for "no data");
    each missing, unknown or mistyped one is a 422 naming `body.tailoring.<name>`.
    Roles: all staff (coordinators, researchers, admins).
    """
    study = get_study(session, study_id)
    version = body.protocol_version or study.active_protocol_version
    if version is None:
        raise ConflictError(
            "the study has no protocol yet; upload one first", code="protocol_missing"
        )
    protocol = load_protocol(get_version(session, study.id, version))
    result = preview(
        protocol,
        PreviewInput(
            decision_point=body.decision_point,
            local_time=body.local_time.replace(tzinfo=None),
            tailoring=body.tailoring,
            attributes=body.attributes,
            study_day=body.study_day,
            track=body.track,
            prompts_today=body.prompts_today,
            pushes_today=body.pushes_today,
            minutes_since_last_prompt=body.minutes_since_last_prompt,
        ),
    )
    evaluation = result.evaluation
    aware = result.local
    return PreviewResponse(
        protocol_version=version,
        decision_point=body.decision_point,
        local_time=aware,
        weekday=WEEKDAYS[aware.weekday()],
        local_hour=aware.hour,
        stage=result.stage,
        track=result.track,
        pai_recommendation=result.pai_recommendation,
        pai_scores=result.pai_scores,
        tailoring=result.tailoring.values,
        tailoring_defaulted=result.tailoring.defaulted,
        available=evaluation.available,
        unavailable_reason=evaluation.unavailable_reason,
        rule_id=evaluation.rule_id,
        randomized=evaluation.randomized,
        probabilities=evaluation.probabilities,
        note=evaluation.note,
        fallback=evaluation.fallback,
        error=evaluation.error,
        options=[
            OptionConsideredOut(
                option_id=o.option_id,
                category=o.category,
                declared_probability=o.declared_probability,
                probability=o.probability,
                contraindicated=o.contraindicated,
                excluded_because=o.excluded_because,
            )
            for o in result.options
        ],
    )
