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
