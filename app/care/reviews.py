"""Care-team reviews: due on the protocol's cadence and when a listed flag opens, sent to
the study's care routes when due, escalated to the next level when overdue, completed
with a structured outcome.

Transactions: ``plan_study`` adds the reviews that fell due (cadence and flag) in the
caller's transaction, under a lock on the study row (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so two workers never add one twice; a flag's review is also unique by flag.
``send_review_notices`` marks due and overdue reviews as sent and adds their
``alert_sends`` rows (``app.alerts.sends.send_notice``) in one transaction whose reviews
are locked the same way; the worker's care sender delivers them like alert sends.
``complete_review`` records the outcome, the phase change it carries and the audit event
in the request's transaction.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.alerts.sends import Notice, next_level, send_notice
from app.audit.service import Actor, record
from app.care.models import PLAN_CHANGES, Review, ReviewOutcome, ReviewStatus, ReviewTrigger
from app.care.phases import change_phase
from app.core.clock import Clock
from app.core.db import session_scope
from app.core.errors import ConflictError, InvalidInputError, NotFoundError
from app.core.pagination import keyset_page
from app.monitoring.fatigue import end_fatigue_episode
from app.monitoring.models import CareFlag, FlagKind
from app.participants.models import Participant, ParticipantStatus
from app.protocols.document import Reviews
from app.protocols.store import protocols_of_versions
from app.studies.models import Study

NOTICE_BATCH = 100


def status_of(review: Review, now: datetime) -> ReviewStatus:
    if review.completed_at is not None:
        return ReviewStatus.completed
    if now >= review.overdue_at:
        return ReviewStatus.overdue
    if now >= review.due_at:
        return ReviewStatus.due
    return ReviewStatus.upcoming


def _review(
    participant: Participant, rules: Reviews, now: datetime, due_at: datetime, **fields: Any
) -> Review:
    assert participant.protocol_version is not None  # noqa: S101 - only followed participants
    return Review(
        study_id=participant.study_id,
        participant_id=participant.id,
        protocol_version=participant.protocol_version,
        due_at=due_at,
        overdue_at=due_at + timedelta(days=rules.grace_days),
        created_at=now,
        **fields,
    )


def plan_study(session: Session, clock: Clock, study: Study) -> list[Review]:
    """Add the study's reviews that are due by now and not yet there: one per open flag of
    a kind the protocol lists, and a participant's next cadence review once the last
    completed review (or enrollment) is ``every_days`` ago. Returns those added."""
    locked = session.scalar(
        sa.select(Study.id).where(Study.id == study.id).with_for_update(skip_locked=True)
    )
    if locked is None:
        return []  # another worker is planning this study now
    now = clock.now()
    participants = session.scalars(
        sa.select(Participant).where(
            Participant.study_id == study.id,
            Participant.status == ParticipantStatus.active,
            Participant.enrolled_at.is_not(None),
            Participant.protocol_version.is_not(None),
        )
    ).all()
    protocols = protocols_of_versions(
        session, {(study.id, p.protocol_version) for p in participants if p.protocol_version}
    )
    rules: dict[uuid.UUID, Reviews] = {}
    for participant in participants:
        protocol = protocols.get((study.id, participant.protocol_version or 0))
        if protocol is not None and protocol.reviews is not None:
            rules[participant.id] = protocol.reviews
    if not rules:
        return []
    by_id = {p.id: p for p in participants if p.id in rules}
    added = _flag_reviews(session, now, study, by_id, rules)
    added += _cadence_reviews(session, now, study, by_id, rules)
    session.add_all(added)
    session.flush()
    return added


def _flag_reviews(
    session: Session,
    now: datetime,
    study: Study,
    participants: dict[uuid.UUID, Participant],
    rules: dict[uuid.UUID, Reviews],
) -> list[Review]:
    flags = session.scalars(
        sa.select(CareFlag).where(
            CareFlag.study_id == study.id,
            CareFlag.resolved_at.is_(None),
            ~sa.exists().where(Review.flag_id == CareFlag.id),
        )
    ).all()
    added = []
    for flag in flags:
        participant = participants.get(flag.participant_id)
        if participant is None or flag.kind not in rules[participant.id].on_flags:
            continue
        added.append(
            _review(
                participant,
                rules[participant.id],
                now,
                flag.raised_at,
                trigger=ReviewTrigger.flag,
                flag_id=flag.id,
            )
        )
    return added


def _cadence_reviews(
    session: Session,
    now: datetime,
    study: Study,
    participants: dict[uuid.UUID, Participant],
    rules: dict[uuid.UUID, Reviews],
) -> list[Review]:
    open_cadence = set(
        session.scalars(
            sa.select(Review.participant_id).where(
                Review.study_id == study.id,
                Review.trigger == ReviewTrigger.cadence,
                Review.completed_at.is_(None),
            )
        )
    )
    last_completed = dict(
        session.execute(
            sa.select(Review.participant_id, sa.func.max(Review.completed_at))
            .where(Review.study_id == study.id, Review.completed_at.is_not(None))
            .group_by(Review.participant_id)
        ).all()
    )
    added = []
    for pid, participant in participants.items():
        every = rules[pid].every_days
        if every is None or pid in open_cadence or participant.enrolled_at is None:
            continue
        due_at = (last_completed.get(pid) or participant.enrolled_at) + timedelta(days=every)
        if due_at <= now:
            added.append(
                _review(participant, rules[pid], now, due_at, trigger=ReviewTrigger.cadence)
            )
    return added


def plan_all(session: Session, clock: Clock) -> int:
    """Every study's due reviews (the worker's hourly job, after the flags)."""
    return sum(
        len(plan_study(session, clock, study)) for study in session.scalars(sa.select(Study))
    )


def _notice(review: Review, code: str, slug: str, overdue: bool, level: int) -> Notice:
    state = "OVERDUE" if overdue else "due"
    why = "a flag was raised" if review.trigger == ReviewTrigger.flag else "on the cadence"
    subject = f"[Kairos review {state}] {slug}: participant {code}"
    body = (
        f"A care-team review of participant {code} in study {slug} is {state} ({why}).\n\n"
        f"Due at: {review.due_at.isoformat()}\n"
        f"Overdue at: {review.overdue_at.isoformat()}\n"
        f"Escalation level: {level}\n\n"
        f"Complete it in Kairos: POST /v1/studies/{review.study_id}/reviews/{review.id}/complete\n"
        f"Review id: {review.id}\n"
    )
    payload = {
        "type": "kairos.review",
        "review_id": str(review.id),
        "study_id": str(review.study_id),
        "participant_id": str(review.participant_id),
        "participant_code": code,
        "trigger": review.trigger,
        "flag_id": str(review.flag_id) if review.flag_id else None,
        "status": "overdue" if overdue else "due",
        "due_at": review.due_at.isoformat(),
        "overdue_at": review.overdue_at.isoformat(),
    }
    return Notice(subject, body, payload, review_id=review.id)


def send_review_notices(session_factory: sessionmaker[Session], clock: Clock) -> int:
    """Send due reviews to the lowest level of the study's routes that takes the protocol's
    review severity, and overdue ones to the next level above (the same level when there is
    none above); each once. How many reviews were sent."""
    with session_scope(session_factory) as session:
        now = clock.now()
        reviews = session.scalars(
            sa.select(Review)
            .where(
                Review.completed_at.is_(None),
                sa.or_(
                    sa.and_(Review.notified_at.is_(None), Review.due_at <= now),
                    sa.and_(Review.escalated_at.is_(None), Review.overdue_at <= now),
                ),
            )
            .order_by(Review.due_at)
            .limit(NOTICE_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        if not reviews:
            return 0
        protocols = protocols_of_versions(
            session, {(r.study_id, r.protocol_version) for r in reviews}
        )
        codes = dict(
            session.execute(
                sa.select(Participant.id, Participant.code).where(
                    Participant.id.in_({r.participant_id for r in reviews})
                )
            ).all()
        )
        slugs = dict(
            session.execute(
                sa.select(Study.id, Study.slug).where(Study.id.in_({r.study_id for r in reviews}))
            ).all()
        )
        sent = 0
        for review in reviews:
            protocol = protocols.get((review.study_id, review.protocol_version))
            severity = str(protocol.reviews.severity) if protocol and protocol.reviews else "medium"
            overdue = now >= review.overdue_at
            if overdue:
                above = review.notified_level if review.notified_level is not None else -1
                level = next_level(session, review.study_id, severity, above)
                if level is None:
                    level = review.notified_level
                review.escalated_at = now
            else:
                level = next_level(session, review.study_id, severity, -1)
            # A review that is overdue before it was ever sent counts as notified too.
            review.notified_at = review.notified_at or now
            if level is None:
                continue  # no route takes it: it is only listed (GET …/reviews)
            review.notified_level = level
            notice = _notice(
                review,
                codes.get(review.participant_id, ""),
                slugs.get(review.study_id, ""),
                overdue,
                level,
            )
            sent += bool(send_notice(session, clock, review.study_id, severity, level, notice))
        return sent


def list_reviews(
    session: Session,
    study: Study,
    now: datetime,
    *,
    status: ReviewStatus | None,
    participant_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> tuple[Sequence[Review], uuid.UUID | None]:
    stmt = sa.select(Review).where(Review.study_id == study.id)
    if participant_id is not None:
        stmt = stmt.where(Review.participant_id == participant_id)
    if status is ReviewStatus.completed:
        stmt = stmt.where(Review.completed_at.is_not(None))
    elif status is ReviewStatus.overdue:
        stmt = stmt.where(Review.completed_at.is_(None), Review.overdue_at <= now)
    elif status is ReviewStatus.due:
        stmt = stmt.where(
            Review.completed_at.is_(None), Review.due_at <= now, Review.overdue_at > now
        )
    elif status is ReviewStatus.upcoming:
        stmt = stmt.where(Review.completed_at.is_(None), Review.due_at > now)
    return keyset_page(session, stmt, Review.id, after=after, limit=limit)


def get_review(session: Session, study: Study, review_id: uuid.UUID) -> Review:
    review = session.get(Review, review_id)
    if review is None or review.study_id != study.id:
        raise NotFoundError(f"study {study.id} has no review {review_id}", code="review_not_found")
    return review


@dataclass(frozen=True)
class Completion:
    outcome: ReviewOutcome
    note: str
    reason: str | None = None
    phase: str | None = None
    # End the participant's open fatigue episode with this review (its reduced burden).
    end_fatigue_response: bool = False


# Outcomes that may carry a new phase (required for change_phase).
_PHASE_OUTCOMES = frozenset(
    {ReviewOutcome.change_phase, ReviewOutcome.escalate, ReviewOutcome.step_down}
)


def open_non_response_flag(session: Session, participant_id: uuid.UUID) -> CareFlag | None:
    return session.scalars(
        sa.select(CareFlag)
        .where(
            CareFlag.participant_id == participant_id,
            CareFlag.kind == FlagKind.non_response,
            CareFlag.resolved_at.is_(None),
        )
        .order_by(CareFlag.raised_at.desc())
        .limit(1)
    ).first()


def complete_review(
    session: Session, clock: Clock, actor: Actor, review: Review, completion: Completion
) -> Review:
    """Record the review's outcome (once), and the phase change it carries; audited."""
    if review.completed_at is not None:
        raise ConflictError(
            f"the review was already completed at {review.completed_at.isoformat()} "
            f"by {review.completed_by} ({review.outcome})",
            code="review_already_completed",
        )
    outcome, reason = completion.outcome, (completion.reason or "").strip() or None
    flag = open_non_response_flag(session, review.participant_id)
    if outcome is ReviewOutcome.maintain and flag is not None and reason is None:
        raise InvalidInputError(
            "reason: a non-response flag is open for this participant (raised "
            f"{flag.raised_at.isoformat()}); say why the plan is maintained (clinically "
            "appropriate restraint is not inertia, but it must be stated)",
            field="reason",
            code="maintain_reason_required",
        )
    if completion.phase is not None and outcome not in _PHASE_OUTCOMES:
        raise InvalidInputError(
            f"phase: outcome {outcome} keeps the phase; give a phase only with change_phase, "
            "escalate or step_down",
            field="phase",
            code="phase_not_allowed",
        )
    if outcome is ReviewOutcome.change_phase and completion.phase is None:
        raise InvalidInputError(
            "phase: outcome change_phase needs the phase to move the participant to",
            field="phase",
            code="phase_required",
        )
    participant = session.get_one(Participant, review.participant_id)
    if completion.phase is not None:
        change_phase(
            session,
            clock,
            actor,
            participant,
            completion.phase,
            reason or completion.note,
            review_id=review.id,
        )
    ended = None
    if completion.end_fatigue_response:
        ended = end_fatigue_episode(
            session,
            clock,
            actor,
            review.participant_id,
            reason=f"review {review.id}: {reason or completion.note}",
        )
        if ended is None:
            raise ConflictError(
                "end_fatigue_response: the participant has no open fatigue episode",
                code="no_fatigue_episode",
            )
    review.completed_at = clock.now()
    review.completed_by = actor.label
    review.outcome = outcome
    review.reason = reason
    review.note = completion.note
    review.new_phase = completion.phase
    review.open_non_response_flag_id = flag.id if flag is not None else None
    record(
        session,
        clock,
        actor,
        "review.complete",
        resource_type="care_review",
        resource_id=review.id,
        study_id=review.study_id,
        detail={
            "participant_id": str(review.participant_id),
            "outcome": outcome,
            "reason": reason,
            "note": completion.note,
            "phase": completion.phase,
            "open_non_response_flag_id": str(flag.id) if flag is not None else None,
            "ended_fatigue_flag_id": str(ended.id) if ended is not None else None,
        },
    )
    return review


def is_plan_change(outcome: str | None) -> bool:
    return outcome in PLAN_CHANGES
