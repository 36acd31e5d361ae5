import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType
from app.core.models import IdMixin


class WebhookStatus(StrEnum):
    pending = "pending"  # not delivered yet; tried again at webhook_next_attempt_at
    sending = "sending"  # one process is posting it now (leased until webhook_lease_expires_at)
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # gave up after the configured number of attempts
    not_configured = "not_configured"  # no webhook URL was set when the alert was raised
    # The study has care routes: they decide who is sent it (see the alert's sends), so the
    # deployment-wide webhook is not posted it as well.
    routed = "routed"


class Alert(IdMixin, Base):
    """An escalation: an EMA answer that matched its item's escalation rule in the protocol."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("ix_alerts_study_created", "study_id", "created_at"),
        sa.Index("ix_alerts_webhook_due", "webhook_status", "webhook_next_attempt_at"),
    )

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    # The response whose answer raised the alert.
    response_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ema_responses.id", ondelete="SET NULL")
    )
    questionnaire_id: Mapped[str] = mapped_column(sa.String(64))
    item_id: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text)
    # The answer that matched (for the care team; never sent to the webhook).
    value: Mapped[Any] = mapped_column(JSONType)
    answered_at: Mapped[datetime]
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(80))
    acknowledgement_note: Mapped[str | None] = mapped_column(sa.Text)
    webhook_status: Mapped[str] = mapped_column(sa.String(16))
    webhook_attempts: Mapped[int] = mapped_column(default=0)
    webhook_next_attempt_at: Mapped[datetime | None]
    webhook_last_error: Mapped[str | None] = mapped_column(sa.Text)
    webhook_delivered_at: Mapped[datetime | None]
    # Who is posting it now, and until when (a process that dies lets the lease lapse).
    webhook_lease_owner: Mapped[str | None] = mapped_column(sa.String(120))
    webhook_lease_expires_at: Mapped[datetime | None]
    # The highest route level the alert has been sent to (0: the first responders), and
    # when it moves to the next level if nobody has acknowledged it (None: it never does).
    escalation_level: Mapped[int] = mapped_column(default=0, server_default="0")
    escalation_due_at: Mapped[datetime | None]
    # The escalation's declared wait between levels (None: never escalated).
    escalate_after_minutes: Mapped[int | None]


class RouteChannel(StrEnum):
    email = "email"
    webhook = "webhook"


class CareRoute(IdMixin, Base):
    """Who in a study's care team receives which alerts: one address (or the deployment's
    signed webhook) for the severities listed, at one escalation level."""

    __tablename__ = "care_routes"
    __table_args__ = (sa.Index("ix_care_routes_study_level", "study_id", "level"),)

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    # 0 receives an alert at once; level n when it is still unacknowledged after the
    # escalation's declared time at level n - 1.
    level: Mapped[int]
    label: Mapped[str] = mapped_column(sa.String(120))
    channel: Mapped[str] = mapped_column(sa.String(16))
    # The e-mail address; None for the webhook (its URL and secret are deployment settings).
    address: Mapped[str | None] = mapped_column(sa.String(320))
    # The alert severities this route receives (every one when empty).
    severities: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(80))


class CareTeamSettings(Base):
    """A study's declaration that its alerts are only polled (no route), with the reason."""

    __tablename__ = "care_team_settings"

    study_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    poll_only: Mapped[bool]
    poll_only_reason: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(80))


class SendStatus(StrEnum):
    pending = "pending"  # due at next_attempt_at
    sending = "sending"  # leased to one process until lease_expires_at
    delivered = "delivered"
    failed = "failed"  # gave up after the configured number of attempts


class AlertSend(IdMixin, Base):
    """One alert (or one due or overdue care-team review) to one route: durable, leased
    while sent, retried with backoff."""

    __tablename__ = "alert_sends"
    __table_args__ = (
        sa.Index("ix_alert_sends_due", "status", "next_attempt_at"),
        sa.Index("ix_alert_sends_alert", "alert_id", "created_at"),
        sa.Index("ix_alert_sends_review", "review_id", "created_at"),
        sa.Index("ix_alert_sends_flag", "flag_id", "created_at"),
    )

    # What is sent: an alert, or a review (``app.care.reviews``) or a care flag
    # (``app.monitoring.flags``), whose message is composed when the send is added
    # (``content``: subject, body, payload).
    alert_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("alerts.id", ondelete="CASCADE")
    )
    review_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("care_reviews.id", ondelete="CASCADE")
    )
    flag_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("care_flags.id", ondelete="CASCADE")
    )
    content: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The route may be removed later; what was sent where stays on the alert's timeline.
    route_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("care_routes.id", ondelete="SET NULL")
    )
    level: Mapped[int]
    channel: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str | None] = mapped_column(sa.String(320))
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(120))
    lease_expires_at: Mapped[datetime | None]
