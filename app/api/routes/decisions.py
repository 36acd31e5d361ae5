import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import AnyStaff
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.common import Version
from app.api.schemas.decisions import (
    DecisionOut,
    DecisionPage,
    EngagementOut,
    OptionConsideredOut,
    ParticipantPosteriorOut,
    PosteriorDetail,
    PosteriorOut,
    PosteriorPage,
    PreviewRequest,
    PreviewResponse,
)
from app.audit.service import record_participant_read
from app.core.errors import ConflictError
from app.decision_rules.evaluation import WEEKDAYS
from app.decision_rules.history import DecisionRecord, decision_history
from app.decision_rules.models import PolicyPosterior
from app.decision_rules.posteriors import (
    current_posterior,
    current_posteriors,
    get_posterior,
    participant_posterior,
    posterior_history,
)
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
        phase=d.phase,
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
        burden_factor=d.burden_factor,
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
            phase=body.phase,
            prompts_today=body.prompts_today,
            pushes_today=body.pushes_today,
            minutes_since_last_prompt=body.minutes_since_last_prompt,
            later_decision_points=body.later_decision_points,
            posterior=current_posteriors(session, {(study.id, version): protocol}).get(
                (study.id, version)
            ),
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
        phase=result.phase,
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
        learning=evaluation.learning,
        dose=evaluation.dose,
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


def _coefficients(session: SessionDep, row: PolicyPosterior) -> list[str]:
    protocol = load_protocol(get_version(session, row.study_id, row.protocol_version))
    learned = protocol.policy.thompson_sampling
    names = ["intercept", *(learned.features if learned is not None else ())]
    return [f"{block}:{name}" for block in ("baseline", "effect") for name in names]


def _posterior(session: SessionDep, row: PolicyPosterior) -> PosteriorOut:
    return PosteriorOut(
        id=row.id,
        study_id=row.study_id,
        protocol_version=row.protocol_version,
        previous_id=row.previous_id,
        scheduled_for=row.scheduled_for,
        computed_at=row.computed_at,
        inputs_from=row.inputs_from,
        inputs_to=row.inputs_to,
        rows_used=row.rows_used,
        rows_total=row.rows_total,
        noise_variance=row.noise_variance,
        coefficients=_coefficients(session, row),
        mean=row.mean,
        covariance=row.covariance,
    )


def _detail(session: SessionDep, row: PolicyPosterior) -> PosteriorDetail:
    return PosteriorDetail(**_posterior(session, row).model_dump(), inputs=row.inputs)


VersionQuery = Annotated[
    Version | None, Query(description="Only this protocol version (default: all).")
]


@router.get(
    "/v1/studies/{study_id}/posteriors",
    response_model=PosteriorPage,
    summary="The history of the study's learning-policy posteriors",
)
def list_posteriors(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    protocol_version: VersionQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
) -> PosteriorPage:
    """Every stored posterior of the study's learning policy (policy.thompson_sampling),
    newest first: its due time, the decision-time range and count of the rows it added,
    the coefficients' mean and covariance. Pooled over participants (no participant's data
    on its own). See docs/learning-policies.md for recomputing each from the export.

    Roles: all staff (researchers, coordinators, admins).
    """
    study = get_study(session, study_id)
    rows, next_cursor = posterior_history(
        session, study.id, version=protocol_version, after=cursor, limit=limit
    )
    return PosteriorPage(items=[_posterior(session, r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/v1/studies/{study_id}/posteriors/current",
    response_model=PosteriorDetail,
    summary="The posterior the study's decisions use now",
)
def read_current_posterior(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    protocol_version: VersionQuery = None,
) -> PosteriorDetail:
    """The latest posterior of the study's active protocol version (or `protocol_version`),
    with the decisions it added and their outcomes. 404 before the first update (the
    decisions then use the declared fallback probability) and 409 when the study has no
    protocol.

    Roles: all staff (researchers, coordinators, admins).
    """
    study = get_study(session, study_id)
    version = protocol_version or study.active_protocol_version
    if version is None:
        raise ConflictError(
            "the study has no protocol yet; upload one first", code="protocol_missing"
        )
    return _detail(session, current_posterior(session, study.id, version))


@router.get(
    "/v1/studies/{study_id}/posteriors/{posterior_id}",
    response_model=PosteriorDetail,
    summary="One stored posterior",
)
def read_posterior(
    study_id: uuid.UUID, posterior_id: uuid.UUID, caller: AnyStaff, session: SessionDep
) -> PosteriorDetail:
    """One posterior of the study with the decisions it added ([decision id, outcome], in
    the order used): what a researcher needs to check a recomputation.

    Roles: all staff (researchers, coordinators, admins).
    """
    study = get_study(session, study_id)
    return _detail(session, get_posterior(session, study.id, posterior_id))


@router.get(
    "/v1/studies/{study_id}/participants/{participant_id}/posterior",
    response_model=ParticipantPosteriorOut,
    summary="A participant's own learning-policy coefficients",
    responses=problem_responses(409),
)
def read_participant_posterior(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
) -> ParticipantPosteriorOut:
    """For a learning policy with `random_effects`: the participant's own coefficients
    under the study's current posterior (their data shrunk towards the pool, see
    docs/learning-policies.md), the rows of theirs it rests on, and the pooled mean. 404
    before the first update or for an unknown participant; 409 when the policy pools
    everyone (no random effects) or the participant has no protocol version. The read is
    audited.

    Roles: all staff (researchers, coordinators, admins).
    """
    study = get_study(session, study_id)
    participant = get_participant(session, study, participant_id)
    version = participant.protocol_version or study.active_protocol_version
    if version is None:
        raise ConflictError(
            "the study has no protocol yet; upload one first", code="protocol_missing"
        )
    found = participant_posterior(session, participant.id, study.id, version)
    record_participant_read(
        session, clock, caller.actor, participant.id, study.id, "posterior", detail={}
    )
    return ParticipantPosteriorOut(
        posterior_id=found.posterior.id,
        participant_id=participant.id,
        protocol_version=version,
        participant_rows=found.rows,
        coefficients=_coefficients(session, found.posterior),
        mean=found.mean,
        covariance=found.covariance,
        pooled_mean=found.posterior.mean,
    )
