"""Column mixins shared by domain models."""

import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from app.core.ids import new_id


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class TimestampsMixin:
    # Set explicitly from the injected clock by domain code, never by the database.
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
