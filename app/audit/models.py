import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_study_id_occurred_at", "study_id", "occurred_at"),)

    occurred_at: Mapped[datetime] = mapped_column(index=True)
    # "staff:<api key id>", "cli", "system": who did it.
    actor: Mapped[str] = mapped_column(sa.String(80))
    actor_role: Mapped[str | None] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    # No foreign keys: the trail must outlive what it describes.
    study_id: Mapped[uuid.UUID | None]
    resource_type: Mapped[str] = mapped_column(sa.String(40))
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
