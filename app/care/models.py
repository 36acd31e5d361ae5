import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.models import IdMixin


class PhaseChange(IdMixin, Base):
    """One move of a participant between treatment phases. Rows are only ever added: the
    current phase is the latest row's ``to_phase`` (the protocol's initial phase without one)."""

    __tablename__ = "phase_changes"
    __table_args__ = (sa.Index("ix_phase_changes_participant", "participant_id", "changed_at"),)

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    from_phase: Mapped[str] = mapped_column(sa.String(64))
    to_phase: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.Text)
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(sa.String(80))
    # The review whose outcome made the change (None: changed directly).
    review_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("care_reviews.id", ondelete="SET NULL")
    )


class ReviewTrigger(StrEnum):
    cadence = "cadence"  # the protocol's every_days
    flag = "flag"  # a flag listed in reviews.on_flags


class ReviewOutcome(StrEnum):
    escalate = "escalate"
    change_phase = "change_phase"
    step_down = "step_down"
    maintain = "maintain"
    refer = "refer"


# Outcomes that change the plan (the inertia measure); maintain does not.
PLAN_CHANGES = frozenset(
    {
        ReviewOutcome.escalate,
        ReviewOutcome.change_phase,
        ReviewOutcome.step_down,
        ReviewOutcome.refer,
    }
)


class ReviewStatus(StrEnum):
    upcoming = "upcoming"  # due_at is later
    due = "due"  # due, within its grace
    overdue = "overdue"  # past due_at + grace, not completed
    completed = "completed"


class Review(IdMixin, Base):
    """A clinician's structured look at one participant, due on the protocol's cadence or
    when a flag opens; completed once, with an outcome and a note."""

    __tablename__ = "care_reviews"
    __table_args__ = (
        sa.Index("ix_care_reviews_study_due", "study_id", "completed_at", "due_at"),
        sa.Index("ix_care_reviews_participant", "participant_id", "due_at"),
    )

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("studies.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    trigger: Mapped[str] = mapped_column(sa.String(16))
    # The flag that made it due (trigger flag); one review per flag.
    flag_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("care_flags.id", ondelete="SET NULL"), unique=True
    )
    protocol_version: Mapped[int]
    due_at: Mapped[datetime]
    overdue_at: Mapped[datetime]
    created_at: Mapped[datetime]
    # When the care team was sent it as due, and as overdue (its escalation); the level of
    # the routes it was last sent to.
    notified_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    notified_level: Mapped[int | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(sa.String(80))
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    # Why the plan is kept as it is (required for maintain while a non-response flag is open).
    reason: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)
    # The phase the outcome moved the participant to, if any.
    new_phase: Mapped[str | None] = mapped_column(sa.String(64))
    # The non-response flag open when the review was completed, if any.
    open_non_response_flag_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("care_flags.id", ondelete="SET NULL")
    )
