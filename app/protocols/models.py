import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class ProtocolVersion(IdMixin, Base):
    """One uploaded version of a study's protocol document.

    Versions are numbered 1, 2, … per study. Once any participant has been assigned a version
    (``locked_at`` is set) its document never changes: editing means uploading a new version,
    and every schedule row and decision records the version it used.
    """

    __tablename__ = "protocol_versions"
    __table_args__ = (sa.UniqueConstraint("study_id", "version"),)

    study_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("studies.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    # The validated document, normalized (defaults filled in), as the engine reads it.
    document: Mapped[dict[str, Any]]
    # The text as uploaded (YAML comments included), for provenance and for editing.
    source: Mapped[str] = mapped_column(sa.Text)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(80))
    updated_at: Mapped[datetime]
    locked_at: Mapped[datetime | None]
