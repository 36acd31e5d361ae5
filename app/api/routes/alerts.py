"""Escalation alerts for the care team."""

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from app.alerts import service
from app.alerts.models import Alert, AlertSend
from app.api.auth import AnyStaff, Coordinator
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep
from app.api.problems import problem_responses
from app.api.schemas.alerts import (
    AlertAcknowledge,
    AlertOut,
    AlertPage,
    AlertSendOut,
    SafetyPushOut,
)
from app.audit.service import record
from app.notifications.models import Notification
from app.protocols.questionnaires import Severity
from app.studies.service import get_study

router = APIRouter(
    prefix="/v1/studies/{study_id}/alerts",
    tags=["alerts"],
    responses=problem_responses(401, 403, 404, 422),
)


def alert_out(
    alert: Alert, sends: Sequence[AlertSend] = (), push: Notification | None = None
) -> AlertOut:
    fields = {c for c in AlertOut.model_fields if c not in ("sends", "safety_response_push")}
    return AlertOut.model_validate(
        {
            **{c: getattr(alert, c) for c in fields},
            "sends": [AlertSendOut.model_validate(s) for s in sends],
            "safety_response_push": (
                SafetyPushOut(
                    notification_id=push.id,
                    status=push.status,
                    status_reason=push.status_reason,
                    created_at=push.created_at,
                    sent_at=push.sent_at,
                )
                if push is not None
                else None
            ),
        }
    )


@router.get(
    "",
    response_model=AlertPage,
    summary="A study's escalation alerts",
    description="Alerts raised by EMA answers that matched an escalation of the protocol "
    "(e.g. a self-harm item answered yes), oldest first, a page at a time. Filter with "
    "`acknowledged=false` for those still to be handled. Each alert carries its timeline: "
    "every send to a care route (e-mail, webhook) with its status and attempts, escalations "
    "to later levels included. The read is audited. Roles: all "
    "staff.",
)
def list_alerts(
    study_id: uuid.UUID,
    caller: AnyStaff,
    session: SessionDep,
    clock: ClockDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page.")
    ] = None,
    acknowledged: Annotated[
        bool | None, Query(description="true: only acknowledged; false: only open ones.")
    ] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity.")] = None,
    participant_id: Annotated[
        uuid.UUID | None, Query(description="Only this participant's alerts.")
    ] = None,
) -> AlertPage:
    study = get_study(session, study_id)
    items, next_cursor = service.list_alerts(
        session,
        study,
        after=cursor,
        limit=limit,
        acknowledged=acknowledged,
        severity=severity,
        participant_id=participant_id,
    )
    record(
        session,
        clock,
        caller.actor,
        "alert.list",
        resource_type="alert",
        study_id=study.id,
        detail={"count": len(items)},
    )
    session.commit()
    sends = service.sends_of(session, [a.id for a in items])
    pushes = service.safety_pushes(session, items)
    return AlertPage(
        items=[alert_out(a, sends.get(a.id, []), pushes.get(a.id)) for a in items],
        next_cursor=next_cursor,
    )


@router.post(
    "/{alert_id}/acknowledge",
    response_model=AlertOut,
    summary="Acknowledge an alert",
    description="Records that the care team has handled the alert, with a note saying how. "
    "An alert is acknowledged once (409 after that). Roles: coordinator, admin.",
    responses=problem_responses(409),
)
def acknowledge_alert(
    study_id: uuid.UUID,
    alert_id: uuid.UUID,
    body: AlertAcknowledge,
    caller: Coordinator,
    session: SessionDep,
    clock: ClockDep,
) -> AlertOut:
    alert = service.get_alert(session, get_study(session, study_id), alert_id)
    service.acknowledge(session, clock, caller.actor, alert, body.note)
    session.commit()
    sends = service.sends_of(session, [alert.id]).get(alert.id, [])
    return alert_out(alert, sends, service.safety_pushes(session, [alert]).get(alert.id))
