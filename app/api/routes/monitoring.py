import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query

from app.alerts.models import AlertSend
from app.alerts.service import sends_of
from app.api.auth import AnyStaff, Coordinator, Me
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.alerts import AlertSendOut
from app.api.schemas.monitoring import (
    AcknowledgeRequest,
    DayOut,
    FlagOut,
    FlagPage,
    SummaryOut,
    TrendsOut,
    WeekOut,
)
from app.audit.service import record, record_participant_read
from app.core.pagination import keyset_page
from app.monitoring import flags as care_flags
from app.monitoring.models import CareFlag, FlagKind
from app.monitoring.summary import daily_summary
from app.monitoring.trends import trend_items, weekly_figures
from app.participants.models import Participant
from app.participants.service import get_participant
from app.protocols.document import Protocol
from app.protocols.monitoring import Direction
from app.protocols.store import get_version, load_protocol
from app.studies.models import Study
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}",
    tags=["monitoring"],
    responses=problem_responses(401, 403, 404, 422),
)
me_router = APIRouter(prefix="/v1/me", tags=["me"], responses=problem_responses(401, 403, 422))


def _protocol(session: SessionDep, study: Study, participant: Participant) -> Protocol | None:
    if participant.protocol_version is None:
        return None
    return load_protocol(get_version(session, study.id, participant.protocol_version))


@router.get("/flags", response_model=FlagPage, summary="Care-team flags")
def list_flags(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
    kind: Annotated[FlagKind | None, Query(description="Only flags of this kind.")] = None,
    unresolved: Annotated[
        bool, Query(description="Only flags whose condition still holds.")
    ] = True,
) -> FlagPage:
    """Non-response (too little improvement on the declared measure from the baseline
    window to the recent window), treatment fatigue (an open episode: EMA completion or
    engagement declined against the participant's own first weeks) and unreachable (no
    delivered push and no app contact for N days), as the protocol's `monitoring` section
    sets them. Evaluated hourly by the worker; `resolution` says how a resolved flag ended.
    The read is audited.

    Roles: all staff.
    """
    study = get_study(session, study_id)
    stmt = sa.select(CareFlag).where(CareFlag.study_id == study.id)
    if kind is not None:
        stmt = stmt.where(CareFlag.kind == kind)
    if unresolved:
        stmt = stmt.where(CareFlag.resolved_at.is_(None))
    items, next_cursor = keyset_page(session, stmt, CareFlag.id, after=cursor, limit=limit)
    record(session, clock, caller.actor, "flags.read", resource_type="care_flag", study_id=study.id)
    session.commit()
    sends = sends_of(session, [f.id for f in items], of=AlertSend.flag_id)
    return FlagPage(items=[_out(f, sends.get(f.id, [])) for f in items], next_cursor=next_cursor)


def _out(flag: CareFlag, sends: list[AlertSend]) -> FlagOut:
    out = FlagOut.model_validate(flag)
    return out.model_copy(update={"sends": [AlertSendOut.model_validate(s) for s in sends]})


@router.post(
    "/flags/{flag_id}/acknowledge",
    response_model=FlagOut,
    summary="Acknowledge a flag",
    responses=problem_responses(409),
)
def acknowledge_flag(
    study_id: uuid.UUID,
    flag_id: uuid.UUID,
    body: AcknowledgeRequest,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> FlagOut:
    """Records that the care team has seen the flag and what they did. The flag stays
    listed until the evaluation finds its condition gone, except that a fatigue flag
    acknowledged with `end_response: true` ends the fatigue episode and its automatic
    response at once (`resolution: ended_by_care_team`; 422 on other kinds, 409 when the
    episode is already over). Audited.

    Roles: coordinator, admin.
    """
    flag = care_flags.get_flag(session, get_study(session, study_id), flag_id)
    care_flags.acknowledge(
        session, clock, caller.actor, flag, body.note, end_response=body.end_response
    )
    session.commit()
    return _out(flag, sends_of(session, [flag.id], of=AlertSend.flag_id).get(flag.id, []))


@router.get(
    "/participants/{participant_id}/trends",
    response_model=TrendsOut,
    summary="A participant's weekly trends",
)
def participant_trends(
    study_id: uuid.UUID,
    participant_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
) -> TrendsOut:
    """Routine outcome monitoring for one participant: each study week's mean of the
    protocol's trend items (pain, interference, acceptance …) against the enrollment week,
    EMA completion, prompt engagement and the week's wearable summaries (steps, sleep,
    resting heart rate …). The read is audited.

    Roles: all staff.
    """
    study = get_study(session, study_id)
    participant = get_participant(session, study, participant_id)
    protocol = _protocol(session, study, participant)
    weeks = []
    if protocol is not None:
        references = trend_items(protocol)
        figures = weekly_figures(session, participant, protocol, references, clock.now())
        baseline = figures[0].means if figures else {}
        weeks = [
            WeekOut(
                week=f.week,
                start=f.start,
                end=f.end,
                means=f.means,
                baseline=baseline,
                ema_completion=f.ema_completion,
                engagement=f.engagement,
                prompts_offered=f.prompts_offered,
                prompts_answered=f.prompts_answered,
                interventions_sent=f.interventions_sent,
                interventions_opened=f.interventions_opened,
                wearables=f.wearables,
            )
            for f in figures
        ]
    record_participant_read(session, clock, caller.actor, participant.id, study.id, "trends")
    session.commit()
    return TrendsOut(participant_id=participant.id, weeks=weeks)


@me_router.get("/summary", response_model=SummaryOut, summary="My last four weeks")
def my_summary(caller: Me, session: SessionDep, clock: ClockDep) -> SummaryOut:
    """The participant's own last 28 days, day by day: mean pain, steps, sleep minutes and
    exercises completed, side by side, so the app can show how activity and pain moved
    together.

    Roles: the participant (own data only).
    """
    participant = caller.participant
    study = session.get_one(Study, participant.study_id)
    protocol = _protocol(session, study, participant)
    pain_item = _pain_item(protocol)
    days = daily_summary(session, participant, pain_item, clock.now())
    return SummaryOut(
        pain_item=pain_item,
        days=[DayOut.model_validate(d, from_attributes=True) for d in days],
    )


def _pain_item(protocol: Protocol | None) -> str:
    """The non-response item when declared and lower is better (pain, interference), else
    an item called pain (a function item, where higher is better, is not pain)."""
    rule = protocol.monitoring.non_response if protocol is not None else None
    if rule is not None and rule.direction is Direction.lower_is_better:
        return rule.item.partition(".")[2]
    return "pain"
