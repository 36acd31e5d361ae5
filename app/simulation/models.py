import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType
from app.core.models import IdMixin


class SimulationStatus(StrEnum):
    pending = "pending"  # requested, waiting for a worker
    running = "running"  # leased to a worker, simulating
    done = "done"  # the report is stored and the bundle can be downloaded
    failed = "failed"  # the simulation raised; error says why


class SimulationJob(IdMixin, Base):
    """A simulation of a stored protocol version, run by a worker like a background export."""

    __tablename__ = "simulation_jobs"
    __table_args__ = (sa.Index("ix_simulation_jobs_status_created", "status", "created_at"),)

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    protocol_version: Mapped[int]
    participants: Mapped[int]
    days: Mapped[int]
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    # The behaviour model as given (YAML); empty: the default model.
    behaviour: Mapped[str] = mapped_column(sa.Text, default="")
    requested_by: Mapped[str] = mapped_column(sa.String(80))
    status: Mapped[str] = mapped_column(sa.String(16), default=SimulationStatus.pending)
    error: Mapped[str | None] = mapped_column(sa.Text)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Bundle file name inside the export directory (a zip: report.json, report.html,
    # decisions.csv).
    file_name: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(120))
    lease_expires_at: Mapped[datetime | None]
