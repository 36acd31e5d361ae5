import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin, TimestampsMixin

MAX_PUSH_TOKEN_LENGTH = 1024


class Platform(StrEnum):
    android = "android"
    ios = "ios"
    web = "web"


class Device(IdMixin, TimestampsMixin, Base):
    __tablename__ = "devices"
    __table_args__ = (sa.UniqueConstraint("participant_id", "push_token"),)

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    push_token: Mapped[str] = mapped_column(sa.String(MAX_PUSH_TOKEN_LENGTH), index=True)
    platform: Mapped[Platform] = mapped_column(
        sa.Enum(
            Platform, native_enum=False, length=16, name="device_platform", create_constraint=True
        )
    )
    app_version: Mapped[str | None] = mapped_column(sa.String(64))
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(200))
    last_seen_at: Mapped[datetime]


class NotificationKind(StrEnum):
    ema_prompt = "ema_prompt"
    reminder = "reminder"
    intervention = "intervention"
    # The protocol's safety response to a crisis answer (e.g. a crisis line), pushed as well
    # as returned in the EMA batch result.
    safety_response = "safety_response"
    # The protocol's re-engagement message, once when a fatigue episode opens.
    re_engagement = "re_engagement"


class NotificationStatus(StrEnum):
    pending = "pending"  # in the outbox, waiting for its send time
    sending = "sending"  # claimed by a sender
    sent = "sent"  # the provider accepted it
    failed = "failed"  # gave up (retries exhausted, bad payload, no usable device)
    expired = "expired"  # its prompt expired before it could be sent
    cancelled = "cancelled"  # no longer wanted (prompt answered, participant paused)


class Notification(IdMixin, Base):
    """A push in the outbox: written in the same transaction as what created it.

    The id is stable and travels in the push payload; the app echoes it back in engagement
    events, which is how delivery and engagement join up with decisions.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_sendable", "status", "send_at"),
        sa.Index("ix_notifications_participant_created", "participant_id", "created_at"),
    )

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(24))
    # What created it: the scheduled EMA prompt or decision point, and for interventions the
    # decision (the decision log row) and the option chosen.
    scheduled_item_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("scheduled_items.id", ondelete="SET NULL"), index=True
    )
    decision_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    option_id: Mapped[str | None] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    deep_link: Mapped[str | None] = mapped_column(sa.String(500))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    send_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(sa.String(24), default=NotificationStatus.pending)
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    # A retry waits until then (backoff with jitter, or the provider's Retry-After).
    next_attempt_at: Mapped[datetime | None]
    # The sender holding it while it is `sending`; another takes over after expiry.
    lease_owner: Mapped[str | None] = mapped_column(sa.String(120))
    lease_expires_at: Mapped[datetime | None]


class AttemptOutcome(StrEnum):
    accepted = "accepted"  # the provider took the message
    invalid_token = "invalid_token"  # noqa: S105 (an outcome, not a secret); unregistered or invalid token: the device is disabled
    retry = "retry"  # quota or server trouble: tried again later
    rejected = "rejected"  # auth or payload error: not retried, alerted


class DeliveryAttempt(IdMixin, Base):
    """One try to hand one notification to a provider for one device: every attempt is kept."""

    __tablename__ = "delivery_attempts"

    notification_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="SET NULL")
    )
    provider: Mapped[str] = mapped_column(sa.String(32))
    attempt: Mapped[int]
    outcome: Mapped[str] = mapped_column(sa.String(24))
    # The provider's error code (UNREGISTERED, QUOTA_EXCEEDED, UNAVAILABLE …) if any.
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    retry_after_seconds: Mapped[float | None]
    # The provider's message id on success, or a shortened error message.
    response: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
