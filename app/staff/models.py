import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"
    researcher = "researcher"


class ApiKey(IdMixin, Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(
        sa.Enum(Role, native_enum=False, length=16, name="staff_role", create_constraint=True)
    )
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters of the key, shown in listings so people can tell keys apart.
    key_prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
