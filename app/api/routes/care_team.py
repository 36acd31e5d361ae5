"""Care-team routes: who in a study receives which alerts."""

import uuid

from fastapi import APIRouter

from app.alerts import routing
from app.alerts.sends import CareSendConfig
from app.api.auth import AnyStaff, Coordinator
from app.api.deps import ClockDep, SessionDep, SettingsDep
from app.api.problems import problem_responses
from app.api.schemas.care_team import CareTeamIn, CareTeamOut, RouteOut
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}/care-team",
    tags=["care-team"],
    responses=problem_responses(401, 403, 404, 422),
)


def care_team_out(team: routing.CareTeam) -> CareTeamOut:
    return CareTeamOut(
        routes=[RouteOut.model_validate(r) for r in team.routes],
        poll_only=team.poll_only,
        poll_only_reason=team.poll_only_reason,
    )


@router.get(
    "",
    response_model=CareTeamOut,
    summary="A study's care-team routes",
    description="Who is sent the study's alerts (e-mail addresses, the signed webhook), for "
    "which severities, at which escalation level; or the poll-only declaration. Roles: all "
    "staff.",
)
def get_care_team(study_id: uuid.UUID, caller: AnyStaff, session: SessionDep) -> CareTeamOut:
    return care_team_out(routing.care_team(session, get_study(session, study_id)))


@router.put(
    "",
    response_model=CareTeamOut,
    summary="Replace a study's care-team routes",
    description="Replaces every route. Level 0 routes are sent an alert at once; an alert "
    "still unacknowledged after its escalation's `escalate_after_minutes` goes to the next "
    "level. A channel the deployment has not configured is refused (422 naming the route). "
    "`poll_only: true` with no routes and a reason declares that alerts are only read with "
    "GET …/alerts; a study whose protocol has escalation items needs routes or this "
    "declaration before it is active. Audited with the routes before and after. Roles: "
    "coordinator, admin.",
)
def put_care_team(
    study_id: uuid.UUID,
    body: CareTeamIn,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> CareTeamOut:
    study = get_study(session, study_id)
    team = routing.replace_care_team(
        session,
        clock,
        caller.actor,
        study,
        [
            routing.RouteSpec(
                level=r.level,
                label=r.label,
                channel=r.channel,
                address=r.address,
                severities=tuple(str(s) for s in r.severities),
            )
            for r in body.routes
        ],
        poll_only=body.poll_only,
        poll_only_reason=body.poll_only_reason,
        configured_channels=CareSendConfig.from_settings(settings).channels,
    )
    out = care_team_out(team)
    session.commit()
    return out
