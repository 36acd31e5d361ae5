"""Therapeutic inertia, measured: for each non-response flag, how long until a clinician
reviewed the participant, and whether the plan changed (a review outcome other than
maintain, or a phase change) within the protocol's ``plan_change_within_days``."""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.care.models import PLAN_CHANGES, PhaseChange, Review
from app.monitoring.models import CareFlag, FlagKind
from app.participants.models import Participant
from app.protocols.care import Reviews
from app.protocols.store import protocols_of_versions
from app.studies.models import Study

DEFAULT_WITHIN_DAYS = Reviews().plan_change_within_days


@dataclass(frozen=True)
class FlagFollowUp:
    flag_id: uuid.UUID
    participant_id: uuid.UUID
    raised_at: datetime
    first_review_at: datetime | None
    plan_change_at: datetime | None
    within_days: int
    # True or False once the window has passed (or the plan changed); None while it runs.
    changed_in_time: bool | None

    @property
    def hours_to_review(self) -> float | None:
        if self.first_review_at is None:
            return None
        return (self.first_review_at - self.raised_at).total_seconds() / 3600

    @property
    def days_to_plan_change(self) -> float | None:
        if self.plan_change_at is None:
            return None
        return (self.plan_change_at - self.raised_at).total_seconds() / 86400


def _within_days(
    session: Session, study: Study, participant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    versions = dict(
        session.execute(
            sa.select(Participant.id, Participant.protocol_version).where(
                Participant.id.in_(list(set(participant_ids)))
            )
        ).all()
    )
    protocols = protocols_of_versions(session, {(study.id, v) for v in versions.values() if v})
    found = {}
    for pid, version in versions.items():
        protocol = protocols.get((study.id, version)) if version else None
        reviews = protocol.reviews if protocol else None
        found[pid] = reviews.plan_change_within_days if reviews else DEFAULT_WITHIN_DAYS
    return found


def follow_ups(
    session: Session,
    study: Study,
    now: datetime,
    *,
    within_days: int | None = None,
    flag_ids: Sequence[uuid.UUID] | None = None,
) -> list[FlagFollowUp]:
    """Each non-response flag of the study (or only ``flag_ids``), oldest first."""
    stmt = sa.select(CareFlag).where(
        CareFlag.study_id == study.id, CareFlag.kind == FlagKind.non_response
    )
    if flag_ids is not None:
        stmt = stmt.where(CareFlag.id.in_(list(flag_ids)))
    flags = session.scalars(stmt.order_by(CareFlag.raised_at, CareFlag.id)).all()
    if not flags:
        return []
    pids = {f.participant_id for f in flags}
    reviews: dict[uuid.UUID, list[tuple[datetime, str | None]]] = defaultdict(list)
    for pid, completed_at, outcome in session.execute(
        sa.select(Review.participant_id, Review.completed_at, Review.outcome).where(
            Review.participant_id.in_(pids), Review.completed_at.is_not(None)
        )
    ):
        if completed_at is not None:  # excluded by the query
            reviews[pid].append((completed_at, outcome))
    changes: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for pid, changed_at in session.execute(
        sa.select(PhaseChange.participant_id, PhaseChange.changed_at).where(
            PhaseChange.participant_id.in_(pids)
        )
    ):
        changes[pid].append(changed_at)
    windows = _within_days(session, study, pids) if within_days is None else {}
    result = []
    for flag in flags:
        pid, raised = flag.participant_id, flag.raised_at
        after = [(t, o) for t, o in reviews[pid] if t >= raised]
        first_review = min((t for t, _ in after), default=None)
        plan_changes = [t for t, o in after if o in PLAN_CHANGES]
        plan_changes += [t for t in changes[pid] if t >= raised]
        plan_change = min(plan_changes, default=None)
        days = within_days if within_days is not None else windows[pid]
        deadline = raised + timedelta(days=days)
        if plan_change is not None and plan_change <= deadline:
            in_time: bool | None = True
        elif now >= deadline:
            in_time = False
        else:
            in_time = None
        result.append(FlagFollowUp(flag.id, pid, raised, first_review, plan_change, days, in_time))
    return result


@dataclass(frozen=True)
class InertiaSummary:
    non_response_flags: int
    reviewed: int
    median_hours_to_review: float | None
    mean_hours_to_review: float | None
    # Flags whose window has passed or whose plan changed in it, and those changed in time.
    decided: int
    plan_changed_in_time: int

    @property
    def plan_change_share(self) -> float | None:
        return self.plan_changed_in_time / self.decided if self.decided else None


def summarize(follow: Sequence[FlagFollowUp]) -> InertiaSummary:
    hours = [f.hours_to_review for f in follow if f.hours_to_review is not None]
    decided = [f for f in follow if f.changed_in_time is not None]
    return InertiaSummary(
        non_response_flags=len(follow),
        reviewed=len(hours),
        median_hours_to_review=median(hours) if hours else None,
        mean_hours_to_review=sum(hours) / len(hours) if hours else None,
        decided=len(decided),
        plan_changed_in_time=sum(bool(f.changed_in_time) for f in decided),
    )
