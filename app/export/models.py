import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class ExportStatus(StrEnum):
    pending = "pending"  # requested, waiting for a worker
    running = "running"  # leased to a worker, writing the bundle
    done = "done"  # the bundle can be downloaded
    failed = "failed"  # the export raised; error says why


class ExportJob(IdMixin, Base):
    """A large export run by a worker; its bundle is downloaded when ready."""

    __tablename__ = "export_jobs"
    __table_args__ = (sa.Index("ix_export_jobs_status_created", "status", "created_at"),)

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(sa.String(40))
    format: Mapped[str] = mapped_column(sa.String(16))
    filters: Mapped[dict[str, Any]]
    requested_by: Mapped[str] = mapped_column(sa.String(80))
    requested_role: Mapped[str | None] = mapped_column(sa.String(16))
    # pending -> running -> done | failed (ExportStatus)
    status: Mapped[str] = mapped_column(sa.String(16), default=ExportStatus.pending)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # Bundle file name inside the export directory (a zip: data, dictionary, provenance).
    file_name: Mapped[str | None] = mapped_column(sa.String(200))
    size_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(120))
    lease_expires_at: Mapped[datetime | None]
