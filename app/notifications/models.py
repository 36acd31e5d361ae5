import uuid
from datetime import datetime
from enum import StrEnum

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
