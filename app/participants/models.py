import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin, TimestampsMixin


class ParticipantStatus(StrEnum):
    invited = "invited"
    active = "active"
    paused = "paused"
    withdrawn = "withdrawn"
    completed = "completed"


def _status_enum(name: str) -> sa.Enum:
    return sa.Enum(
        ParticipantStatus, native_enum=False, length=16, name=name, create_constraint=True
    )


class Participant(IdMixin, TimestampsMixin, Base):
    __tablename__ = "participants"
    __table_args__ = (
        sa.UniqueConstraint("study_id", "code"),
        sa.ForeignKeyConstraint(
            ["study_id", "protocol_version"],
            ["protocol_versions.study_id", "protocol_versions.version"],
            ondelete="RESTRICT",
        ),
    )

    study_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("studies.id", ondelete="RESTRICT"), index=True
    )
    # Pseudonymous: a study-assigned code, never a name, e-mail or phone number.
    code: Mapped[str] = mapped_column(sa.String(64))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[ParticipantStatus] = mapped_column(_status_enum("participant_status"))
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    status_changed_at: Mapped[datetime]
    enrolled_at: Mapped[datetime | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The protocol version this participant follows; assigning one locks that version.
    protocol_version: Mapped[int | None]
    # Set when a push could reach none of the participant's devices (tokens unregistered or
    # invalid, or none registered); cleared when a device is registered or a push arrives.
    unreachable_since: Mapped[datetime | None]
    unreachable_reason: Mapped[str | None] = mapped_column(sa.String(200))
    # The burden factor in force: the protocol's fatigue response while a fatigue episode
    # is open (written by the flags evaluation), else 1 (app/monitoring/fatigue.py).
    burden_factor: Mapped[float] = mapped_column(default=1.0, server_default=sa.text("1.0"))


class ParticipantStatusChange(IdMixin, Base):
    """Every status change, for the care team and for analysis (who left when, and why)."""

    __tablename__ = "participant_status_changes"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[ParticipantStatus | None] = mapped_column(
        _status_enum("status_change_from")
    )
    to_status: Mapped[ParticipantStatus] = mapped_column(_status_enum("status_change_to"))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    changed_by: Mapped[str] = mapped_column(sa.String(80))
    changed_at: Mapped[datetime]


class EnrollmentCode(IdMixin, Base):
    __tablename__ = "enrollment_codes"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # Issuing a new code supersedes the previous one: one live code per participant.
    superseded_at: Mapped[datetime | None]


class ParticipantToken(IdMixin, Base):
    """The bearer token the phone app holds; only its hash is stored."""

    __tablename__ = "participant_tokens"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
