import uuid

from fastapi import APIRouter

from app.analysis.decisions_data import mrt_arrays
from app.analysis.emee import OutcomeType, emee, method_of
from app.analysis.wcls import wcls
from app.api.auth import Researcher
from app.api.deps import ClockDep, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.analyses import MrtAnalysisRequest, MrtAnalysisResult
from app.audit.service import record
from app.core.errors import InvalidInputError
from app.export.columns import Filters
from app.export.service import check_filters
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}/analyses",
    tags=["exports"],
    responses=problem_responses(401, 403, 404, 422),
)


@router.post(
    "/mrt", response_model=MrtAnalysisResult, summary="Causal excursion effect (WCLS or EMEE)"
)
def analyze_mrt(
    study_id: uuid.UUID,
    body: MrtAnalysisRequest,
    caller: Researcher,
    session: SessionDep,
    clock: ClockDep,
) -> MrtAnalysisResult:
    """Estimates the proximal causal excursion effect of prompting (or of one option) on a
    proximal outcome from the decision log, by weighted and centred least squares (Boruvka
    et al. 2018), with moderators and controls from the tailoring variables, the
    Mancl-DeRouen small-sample correction and the F(1, n - p - q) reference distribution;
    or, with `outcome_type: binary`, on the log relative-risk scale by EMEE (Qian et al.
    2021, as MRTAnalysis `emee()`), for a 0/1 outcome such as an engagement outcome.
    Only micro-randomized decisions (0 < probability < 1) count as available. Audited.

    Roles: researcher, admin.
    """
    study = get_study(session, study_id)
    filters = Filters(tuple(body.participant_ids), body.start, body.end, body.protocol_version)
    check_filters(filters)
    arrays = mrt_arrays(
        session,
        study,
        filters,
        clock.now(),
        outcome=body.outcome,
        option=body.option,
        covariates=[*body.moderators, *body.controls],
    )
    binary = body.outcome_type is OutcomeType.binary
    numerator = body.numerator_prob if body.numerator_prob is not None or not binary else 0.5
    try:
        result = (emee if binary else wcls)(
            arrays,
            outcome=body.outcome,
            moderators=body.moderators,
            controls=body.controls,
            numerator_prob=numerator,
            confidence=body.confidence,
            small_sample_correction=body.small_sample_correction,
        )
    except ValueError as exc:
        raise InvalidInputError(
            f"the analysis cannot be run on this data: {exc}", code="analysis_not_estimable"
        ) from exc
    record(
        session,
        clock,
        caller.actor,
        "analysis.mrt",
        resource_type="study",
        resource_id=study.id,
        study_id=study.id,
        detail={"request": body.model_dump(mode="json"), "n_decisions": result.n_decisions},
    )
    session.commit()
    return MrtAnalysisResult(
        outcome=body.outcome,
        treatment=body.option or "any prompt",
        **method_of(body.outcome_type),
        **result.to_dict(),
    )
