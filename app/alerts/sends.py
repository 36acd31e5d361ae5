"""Sending alerts to a study's care routes, durably, and escalating unacknowledged ones.

Transactions: ``route_alert`` runs inside the transaction that raises the alert and adds
one ``alert_sends`` row per level-0 route whose severities include the alert's, so an
accepted crisis answer and what must be sent for it commit together. ``deliver_sends``
then claims due rows with a lease (``app.core.leases``) in one short transaction, hands
them to their channel (e-mail: ``app.alerts.email``; the signed webhook:
``app.alerts.webhook.HttpWebhookChannel``) outside any transaction, and settles each in
another one that first retakes the lease: delivered, pending again after a backoff, or
failed after the configured number of attempts. ``escalate_due`` moves an alert still
unacknowledged at its ``escalation_due_at`` to the next level that has routes, in one
transaction per batch whose alerts are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite has one writer), and moves ``escalation_due_at`` on in that same transaction, so
two workers never escalate one alert twice.
Delivery is at least once: e-mails carry a stable Message-ID, webhook posts the alert id.
"""

import contextlib
import json
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.email import EmailChannel, EmailOut, SmtpConfig, SmtpEmailChannel
from app.alerts.models import Alert, AlertSend, CareRoute, RouteChannel, SendStatus
from app.alerts.webhook import (
    RETRIES,
    HttpWebhookChannel,
    WebhookChannel,
    WebhookConfig,
    WebhookMessage,
    payload,
)
from app.core.channels import Channel
from app.core.clock import Clock
from app.core.config import Settings
from app.core.db import session_scope
from app.core.leases import LeasedTable, claim, retake
from app.participants.models import Participant
from app.studies.models import Study

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
BATCH = 20
ESCALATION_BATCH = 50

ALERT_SENDS = LeasedTable(
    model=AlertSend,
    waiting=SendStatus.pending,
    held=SendStatus.sending,
    order_by=AlertSend.next_attempt_at,
    ready=lambda now: AlertSend.next_attempt_at <= now,
)


@dataclass(frozen=True)
class CareSendConfig:
    """The channels the deployment has configured for care routes."""

    smtp: SmtpConfig | None
    webhook: WebhookConfig | None
    max_attempts: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> "CareSendConfig":
        return cls(
            smtp=SmtpConfig.from_settings(settings),
            webhook=WebhookConfig.from_settings(settings),
            max_attempts=settings.care_send_max_attempts,
        )

    @property
    def channels(self) -> frozenset[str]:
        names = set()
        if self.smtp is not None:
            names.add(RouteChannel.email.value)
        if self.webhook is not None:
            names.add(RouteChannel.webhook.value)
        return frozenset(names)


def has_routes(session: Session, study_id: uuid.UUID) -> bool:
    return bool(session.scalar(sa.select(sa.exists().where(CareRoute.study_id == study_id))))


def _routes_at(session: Session, study_id: uuid.UUID, severity: str, level: int) -> list[CareRoute]:
    routes = session.scalars(
        sa.select(CareRoute)
        .where(CareRoute.study_id == study_id, CareRoute.level == level)
        .order_by(CareRoute.created_at, CareRoute.id)
    ).all()
    return [r for r in routes if not r.severities or severity in r.severities]


def next_level(session: Session, study_id: uuid.UUID, severity: str, above: int) -> int | None:
    """The lowest level above ``above`` with a route of the study that takes ``severity``."""
    rows = session.execute(
        sa.select(CareRoute.level, CareRoute.severities)
        .where(CareRoute.study_id == study_id, CareRoute.level > above)
        .order_by(CareRoute.level)
    ).all()
    for level, severities in rows:
        if not severities or severity in severities:
            return int(level)
    return None


def _next_level(session: Session, alert: Alert, above: int) -> int | None:
    return next_level(session, alert.study_id, alert.severity, above)


def _new_sends(
    session: Session, now: datetime, study_id: uuid.UUID, severity: str, level: int, **about: Any
) -> list[AlertSend]:
    sends = [
        AlertSend(
            route_id=route.id,
            level=level,
            channel=route.channel,
            address=route.address,
            status=SendStatus.pending,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            **about,
        )
        for route in _routes_at(session, study_id, severity, level)
    ]
    session.add_all(sends)
    return sends


def _add_sends(session: Session, now: datetime, alert: Alert, level: int) -> list[AlertSend]:
    return _new_sends(session, now, alert.study_id, alert.severity, level, alert_id=alert.id)


@dataclass(frozen=True)
class Notice:
    """A message for the care team that is not an alert (a due or overdue review, a care
    flag raised), composed when its sends are added: e-mail subject and body, webhook
    payload; and what it is about (one of the ids)."""

    subject: str
    body: str
    payload: dict[str, Any]
    review_id: uuid.UUID | None = None
    flag_id: uuid.UUID | None = None


def send_notice(
    session: Session, clock: Clock, study_id: uuid.UUID, severity: str, level: int, notice: Notice
) -> list[AlertSend]:
    """The sends of ``notice`` to the study's routes at ``level`` that take ``severity``
    (flushed, in the caller's transaction; the worker sends them)."""
    content = {"subject": notice.subject, "body": notice.body, "payload": notice.payload}
    sends = _new_sends(
        session,
        clock.now(),
        study_id,
        severity,
        level,
        review_id=notice.review_id,
        flag_id=notice.flag_id,
        content=content,
    )
    session.flush()
    return sends


def _schedule_escalation(session: Session, now: datetime, alert: Alert) -> None:
    if alert.escalate_after_minutes is None or alert.acknowledged_at is not None:
        alert.escalation_due_at = None
        return
    has_next = _next_level(session, alert, alert.escalation_level) is not None
    alert.escalation_due_at = (
        now + timedelta(minutes=alert.escalate_after_minutes) if has_next else None
    )


def route_alert(session: Session, clock: Clock, alert: Alert) -> list[AlertSend]:
    """The sends of a new alert to its study's first level of routes (flushed)."""
    session.flush()  # the alert's id
    now = clock.now()
    level = _next_level(session, alert, -1)
    if level is None:
        return []
    alert.escalation_level = level
    sends = _add_sends(session, now, alert, level)
    _schedule_escalation(session, now, alert)
    session.flush()
    return sends


def pending_sends(session: Session, alerts: Sequence[Alert]) -> list[uuid.UUID]:
    """The ids of the (committed) sends of ``alerts`` still to be sent."""
    if not alerts:
        return []
    return list(
        session.scalars(
            sa.select(AlertSend.id).where(
                AlertSend.alert_id.in_([a.id for a in alerts]),
                AlertSend.status == SendStatus.pending,
            )
        )
    )


def escalate_due(session_factory: sessionmaker[Session], clock: Clock) -> list[uuid.UUID]:
    """Send each unacknowledged alert whose escalation is due to its next level of routes;
    the ids of the sends added."""
    added: list[AlertSend] = []
    with session_scope(session_factory) as session:
        now = clock.now()
        alerts = session.scalars(
            sa.select(Alert)
            .where(Alert.acknowledged_at.is_(None), Alert.escalation_due_at <= now)
            .order_by(Alert.escalation_due_at)
            .limit(ESCALATION_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for alert in alerts:
            level = _next_level(session, alert, alert.escalation_level)
            if level is None:  # its routes were removed since
                alert.escalation_due_at = None
                continue
            alert.escalation_level = level
            added += _add_sends(session, now, alert, level)
            _schedule_escalation(session, now, alert)
            logger.warning("alert %s unacknowledged: escalated to level %d", alert.id, level)
        session.flush()
        return [s.id for s in added]


def _subject(alert: Alert, study_slug: str) -> str:
    return f"[Kairos {alert.severity}] {study_slug}: {alert.message}"[:200]


def _email_body(alert: Alert, study_slug: str, code: str, level: int) -> str:
    # Pseudonymous like the webhook: no answer values leave Kairos by e-mail.
    return (
        f"A {alert.severity} alert was raised in study {study_slug}.\n\n"
        f"{alert.message}\n\n"
        f"Participant: {code}\n"
        f"Item: {alert.questionnaire_id}.{alert.item_id}\n"
        f"Answered at: {alert.answered_at.isoformat()}\n"
        f"Raised at: {alert.created_at.isoformat()}\n"
        f"Escalation level: {level}\n\n"
        f"Read and acknowledge it in Kairos: "
        f"GET /v1/studies/{alert.study_id}/alerts?acknowledged=false\n"
        f"Alert id: {alert.id}\n"
    )


@dataclass(frozen=True)
class _Claimed:
    send_id: uuid.UUID
    channel: str
    message: Any


def _claim(
    session_factory: sessionmaker[Session],
    clock: Clock,
    owner: str,
    send_ids: Sequence[uuid.UUID] | None,
) -> list[_Claimed]:
    with session_scope(session_factory) as session:
        ids = claim(session, ALERT_SENDS, clock.now(), owner, LEASE, BATCH, only=send_ids)
        claimed = []
        for send in session.scalars(sa.select(AlertSend).where(AlertSend.id.in_(ids))).all():
            send.attempts += 1
            if send.alert_id is None:
                claimed.append(_notice_message(send))
                continue
            alert = session.get_one(Alert, send.alert_id)
            code = session.scalar(
                sa.select(Participant.code).where(Participant.id == alert.participant_id)
            )
            slug = session.scalar(sa.select(Study.slug).where(Study.id == alert.study_id))
            message: Any
            if send.channel == RouteChannel.email:
                message = EmailOut(
                    to=send.address or "",
                    subject=_subject(alert, slug or ""),
                    body=_email_body(alert, slug or "", code or "", send.level),
                    message_id=f"<alert-send-{send.id}@kairos>",
                )
            else:
                body = payload(alert, code or "") | {"attempt": send.attempts, "level": send.level}
                message = WebhookMessage(alert.id, json.dumps(body).encode())
            claimed.append(_Claimed(send.id, send.channel, message))
        return claimed


def _notice_message(send: AlertSend) -> _Claimed:
    """A send of a notice (a review, a flag): its message as composed when it was added."""
    content = send.content or {}
    message: Any
    if send.channel == RouteChannel.email:
        message = EmailOut(
            to=send.address or "",
            subject=str(content.get("subject", "")),
            body=str(content.get("body", "")),
            message_id=f"<alert-send-{send.id}@kairos>",
        )
    else:
        body = dict(content.get("payload") or {}) | {"attempt": send.attempts, "level": send.level}
        message = WebhookMessage(
            send.review_id or send.flag_id or send.id, json.dumps(body).encode()
        )
    return _Claimed(send.id, send.channel, message)


def deliver_sends(
    session_factory: sessionmaker[Session],
    clock: Clock,
    config: CareSendConfig,
    *,
    send_ids: Sequence[uuid.UUID] | None = None,
    rng: random.Random | None = None,
    email: EmailChannel | None = None,
    webhook: WebhookChannel | None = None,
) -> int:
    """Send every due alert send (or only ``send_ids``) through its channel; how many
    arrived. A send whose channel is not configured (any more) fails its attempt."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    owner = f"care-{uuid.uuid4()}"
    delivered = 0
    with contextlib.ExitStack() as stack:
        if email is None and config.smtp is not None:
            email = SmtpEmailChannel(config.smtp)
        if webhook is None and config.webhook is not None:
            webhook = stack.enter_context(HttpWebhookChannel(config.webhook))
        # Both answer results with an ``error`` (None: delivered).
        channels: Mapping[str, Channel[Any, Any] | None] = {
            RouteChannel.email: email,
            RouteChannel.webhook: webhook,
        }
        while claimed := _claim(session_factory, clock, owner, send_ids):
            errors: dict[uuid.UUID, str | None] = {}
            for name, channel in channels.items():
                mine = [c for c in claimed if c.channel == name]
                if not mine:
                    continue
                if channel is None:
                    errors |= {c.send_id: f"channel {name} is not configured" for c in mine}
                    continue
                results = channel.send([c.message for c in mine])
                errors |= {c.send_id: r.error for c, r in zip(mine, results, strict=True)}
            _record(session_factory, clock, config, owner, errors, rng)
            delivered += sum(e is None for e in errors.values())
    return delivered


def _record(
    session_factory: sessionmaker[Session],
    clock: Clock,
    config: CareSendConfig,
    owner: str,
    errors: Mapping[uuid.UUID, str | None],
    rng: random.Random,
) -> None:
    now = clock.now()
    with session_scope(session_factory) as session:
        held = {row[0] for row in retake(session, ALERT_SENDS, list(errors), owner, now, LEASE)}
        for send_id, error in errors.items():
            if send_id not in held:
                logger.warning("alert send %s: lease lost; its new holder records it", send_id)
                continue
            send = session.get_one(AlertSend, send_id)
            send.lease_owner = send.lease_expires_at = None
            send.last_error = error
            if error is None:
                send.status, send.delivered_at, send.next_attempt_at = (
                    SendStatus.delivered,
                    now,
                    None,
                )
            elif send.attempts >= config.max_attempts:
                send.status, send.next_attempt_at = SendStatus.failed, None
                logger.error("alert send %s failed %d times: %s", send_id, send.attempts, error)
            else:
                send.status = SendStatus.pending
                send.next_attempt_at = now + RETRIES.delay(send.attempts, rng)
