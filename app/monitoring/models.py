import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class FlagKind(StrEnum):
    non_response = "non_response"
    fatigue = "fatigue"
    unreachable = "unreachable"


class FlagResolution(StrEnum):
    # The evaluation found the condition gone (for fatigue: the clearing condition held).
    condition_gone = "condition_gone"
    # The care team ended it (a fatigue episode ended by an acknowledgement or a review).
    ended_by_care_team = "ended_by_care_team"


class CareFlag(IdMixin, Base):
    """Something the care team must look at. Raised by the daily evaluation, acknowledged
    by staff with a note, resolved by the evaluation when the condition no longer holds."""

    __tablename__ = "care_flags"
    __table_args__ = (sa.Index("ix_care_flags_study_raised", "study_id", "raised_at"),)

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(24))
    # The figures behind the flag (baseline and recent means, rates, last contact …).
    detail: Mapped[dict[str, Any]]
    raised_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(80))
    note: Mapped[str | None] = mapped_column(sa.Text)
    resolved_at: Mapped[datetime | None]
    # How it was resolved (FlagResolution); null while open and for flags resolved before
    # revision 0014.
    resolution: Mapped[str | None] = mapped_column(sa.String(24))
