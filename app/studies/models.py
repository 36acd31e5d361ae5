from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin, TimestampsMixin


class StudyStatus(StrEnum):
    draft = "draft"
    active = "active"
    closed = "closed"


class Study(IdMixin, TimestampsMixin, Base):
    __tablename__ = "studies"

    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[StudyStatus] = mapped_column(
        sa.Enum(
            StudyStatus, native_enum=False, length=16, name="study_status", create_constraint=True
        )
    )
    # The protocol version new participants are assigned (None until one is uploaded).
    active_protocol_version: Mapped[int | None]
