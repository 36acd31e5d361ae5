"""Raising (and routing), listing and acknowledging escalation alerts."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.models import Alert, AlertSend, WebhookStatus
from app.alerts.sends import has_routes, route_alert
from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError, NotFoundError
from app.core.pagination import keyset_page
from app.notifications.models import Notification, NotificationKind
from app.participants.models import Participant
from app.protocols.questionnaires import Escalation
from app.studies.models import Study


def raise_alert(
    session: Session,
    clock: Clock,
    participant: Participant,
    *,
    response_id: uuid.UUID,
    questionnaire_id: str,
    item_id: str,
    escalation: Escalation,
    value: Any,
    answered_at: datetime,
    webhook_configured: bool,
    note: str | None = None,
) -> Alert:
    """Store an alert and its sends to the study's first level of care routes, due at once.

    A study without routes keeps the deployment-wide webhook (when one is configured).
    """
    now = clock.now()
    if has_routes(session, participant.study_id):
        webhook_configured = False
        initial = WebhookStatus.routed
    else:
        initial = WebhookStatus.pending if webhook_configured else WebhookStatus.not_configured
    alert = Alert(
        study_id=participant.study_id,
        participant_id=participant.id,
        response_id=response_id,
        questionnaire_id=questionnaire_id,
        item_id=item_id,
        severity=str(escalation.severity),
        message=escalation.message if note is None else f"{escalation.message} ({note})",
        value=value,
        answered_at=answered_at,
        created_at=now,
        webhook_status=initial,
        webhook_attempts=0,
        webhook_next_attempt_at=now if webhook_configured else None,
        escalation_level=0,
        escalate_after_minutes=escalation.escalate_after_minutes,
    )
    session.add(alert)
    # In this transaction: an accepted answer never lacks the sends its alert needs.
    route_alert(session, clock, alert)
    return alert


def list_alerts(
    session: Session,
    study: Study,
    *,
    after: uuid.UUID | None,
    limit: int,
    acknowledged: bool | None = None,
    severity: str | None = None,
    participant_id: uuid.UUID | None = None,
) -> tuple[Sequence[Alert], uuid.UUID | None]:
    stmt = sa.select(Alert).where(Alert.study_id == study.id)
    if acknowledged is not None:
        stmt = stmt.where(
            Alert.acknowledged_at.is_not(None) if acknowledged else Alert.acknowledged_at.is_(None)
        )
    if severity is not None:
        stmt = stmt.where(Alert.severity == severity)
    if participant_id is not None:
        stmt = stmt.where(Alert.participant_id == participant_id)
    return keyset_page(session, stmt, Alert.id, after=after, limit=limit)


def sends_of(
    session: Session, alert_ids: Sequence[uuid.UUID], *, of: Any = AlertSend.alert_id
) -> dict[uuid.UUID, list[AlertSend]]:
    """Each alert's sends (or each review's or flag's, with ``of=AlertSend.review_id`` or
    ``AlertSend.flag_id``), oldest first (one query for a page of them)."""
    found: dict[uuid.UUID, list[AlertSend]] = {}
    if not alert_ids:
        return found
    for send in session.scalars(
        sa.select(AlertSend)
        .where(of.in_(list(alert_ids)))
        .order_by(AlertSend.created_at, AlertSend.level, AlertSend.id)
    ):
        owner = send.alert_id or send.review_id or send.flag_id
        if owner is not None:
            found.setdefault(owner, []).append(send)
    return found


def get_alert(session: Session, study: Study, alert_id: uuid.UUID) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or alert.study_id != study.id:
        raise NotFoundError(f"study {study.id} has no alert {alert_id}", code="alert_not_found")
    return alert


def acknowledge(session: Session, clock: Clock, actor: Actor, alert: Alert, note: str) -> Alert:
    """Record that the care team has seen and handled the alert, and how."""
    if alert.acknowledged_at is not None:
        raise ConflictError(
            f"the alert was already acknowledged at {alert.acknowledged_at.isoformat()} "
            f"by {alert.acknowledged_by}",
            code="alert_already_acknowledged",
        )
    alert.acknowledged_at = clock.now()
    alert.acknowledged_by = actor.label
    alert.acknowledgement_note = note
    alert.escalation_due_at = None  # somebody has it: no further level is sent it
    record(
        session,
        clock,
        actor,
        "alert.acknowledge",
        resource_type="alert",
        resource_id=alert.id,
        study_id=alert.study_id,
        detail={"note": note},
    )
    return alert


def safety_pushes(session: Session, alerts: Sequence[Alert]) -> dict[uuid.UUID, Notification]:
    """The safety-response push sent to the participant for each alert that had one (two
    queries for a page). One push goes out per answered questionnaire, however many of its
    items alerted, naming the first alert: each alert of that response shows it."""
    if not alerts:
        return {}
    responses = {a.response_id for a in alerts if a.response_id is not None}
    response_of: dict[str, uuid.UUID | None] = {
        str(alert_id): response_id
        for alert_id, response_id in session.execute(
            sa.select(Alert.id, Alert.response_id).where(Alert.response_id.in_(responses))
        )
    }
    pushes = session.scalars(
        sa.select(Notification).where(
            Notification.kind == NotificationKind.safety_response,
            Notification.participant_id.in_({a.participant_id for a in alerts}),
        )
    ).all()
    by_alert = {str(n.data.get("alert_id")): n for n in pushes}
    by_response = {
        response_of[alert_id]: n for alert_id, n in by_alert.items() if response_of.get(alert_id)
    }
    found = {}
    for alert in alerts:
        push = by_alert.get(str(alert.id)) or by_response.get(alert.response_id)
        if push is not None:
            found[alert.id] = push
    return found
