"""Firing due rows: claim a small batch with a lease, then settle it in one transaction.

1. Claim (own short transaction): due `planned` rows, and `claimed` rows whose lease has
   expired (their worker died), become `claimed` by this worker until the lease ends.
   PostgreSQL uses `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches;
   SQLite has one writer at a time.
2. Settle (one transaction): a guarded update (`WHERE id IN … AND lease_owner = me AND
   status = 'claimed'`) re-takes the rows and locks them; rows another worker has taken
   over meanwhile are skipped. Then each row is numbered, fired or recorded as missed, and
   its pushes are written to the outbox; it all commits together.

A row later than its grace period is recorded as `missed` with the reason, never fired late.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from app.core.bulk_updates import update_by_id
from app.core.clock import Clock
from app.core.db import UTCDateTime, is_database_unavailable, session_scope
from app.core.leases import LeasedTable, claim, retake
from app.notifications.outbox import (
    NotificationValues,
    Origin,
    intervention_notification,
    prompt_notifications,
    write_outbox,
)
from app.participants.models import Participant, ParticipantStatus
from app.protocols.document import Protocol
from app.protocols.store import protocols_of_versions
from app.scheduling.burden import thinning_reason, with_reminders_scaled
from app.scheduling.decision_hook import DecideBatch
from app.scheduling.models import UNANSWERED, ItemKind, ItemStatus, ScheduledItem

logger = logging.getLogger(__name__)

# An EMA prompt may go out at most this late; later it is recorded as missed. (Decision
# points use their protocol's grace_minutes.)
EMA_PROMPT_GRACE = timedelta(minutes=10)


@dataclass
class Settled:
    fired: int = 0
    missed: int = 0
    cancelled: int = 0
    lost: int = 0  # taken over by another worker after our lease expired
    notifications: list[uuid.UUID] = field(default_factory=list)
    # (kind, fired | missed, seconds from due time to settling) of each row settled
    lags: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def touched(self) -> bool:
        """Whether the batch found any rows (there may be more)."""
        return bool(self.fired or self.missed or self.cancelled or self.lost)

    def add(self, other: "Settled") -> None:
        self.fired += other.fired
        self.missed += other.missed
        self.cancelled += other.cancelled
        self.lost += other.lost
        self.notifications += other.notifications
        self.lags += other.lags


# Due rows are planned, claimed by a worker, then settled (fired, missed or cancelled).
SCHEDULE = LeasedTable(
    model=ScheduledItem,
    waiting=ItemStatus.planned,
    held=ItemStatus.claimed,
    order_by=ScheduledItem.due_at,
    due=lambda now: ScheduledItem.due_at <= now,
    stamps=("updated_at",),
)


def claim_due(
    session: Session, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[uuid.UUID]:
    return claim(session, SCHEDULE, now, owner, lease, limit)


def _retake(
    session: Session, ids: Sequence[uuid.UUID], owner: str, now: datetime, lease: timedelta
) -> list[uuid.UUID]:
    return [row.id for row in retake(session, SCHEDULE, ids, owner, now, lease)]


def lateness_problem(item: ScheduledItem, protocol: Protocol | None, now: datetime) -> str | None:
    """Why the row is too late to fire now, or None when it is on time."""
    if item.kind == ItemKind.decision_point:
        deadline = item.expires_at or item.due_at
    else:
        deadline = item.due_at + EMA_PROMPT_GRACE
        if item.expires_at is not None:
            deadline = min(deadline, item.expires_at)
    if now <= deadline:
        return None
    late = now - item.due_at
    allowed = deadline - item.due_at
    return (
        f"late: reached {int(late.total_seconds())} s after its due time "
        f"{item.due_at.isoformat()}, allowed {int(allowed.total_seconds())} s"
    )


def _number(session: Session, items: Sequence[ScheduledItem]) -> None:
    """Give each row the next sequence number of its participant and kind (the MRT decision
    index). Participants are locked in id order, so two workers never hand out one number
    twice and never deadlock."""
    participant_ids = sorted({i.participant_id for i in items})
    session.execute(
        sa.select(Participant.id)
        .where(Participant.id.in_(participant_ids))
        .order_by(Participant.id)
        .with_for_update()
    )
    latest: dict[tuple[uuid.UUID, str], int] = {
        (pid, kind): seq
        for pid, kind, seq in session.execute(
            sa.select(
                ScheduledItem.participant_id,
                ScheduledItem.kind,
                sa.func.max(ScheduledItem.sequence),
            )
            .where(
                ScheduledItem.participant_id.in_(participant_ids),
                ScheduledItem.sequence.is_not(None),
            )
            .group_by(ScheduledItem.participant_id, ScheduledItem.kind)
        ).all()
        if seq is not None
    }
    for item in sorted(items, key=lambda i: (i.due_at, i.slot_key)):
        key = (item.participant_id, item.kind)
        latest[key] = latest.get(key, -1) + 1
        # Written with the row's outcome (see _write_outcomes), not by the unit of work.
        set_committed_value(item, "sequence", latest[key])


class _Outcomes:
    """The rows' final states, written together when the batch is settled."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.rows: list[dict[str, object]] = []

    def finish(self, item: ScheduledItem, status: ItemStatus, reason: str | None) -> None:
        self.rows.append(
            {
                "id": item.id,
                "sequence": item.sequence,
                "status": status,
                "status_reason": reason,
                "lease_owner": None,
                "lease_expires_at": None,
                "completed_at": self.now,
                "updated_at": self.now,
            }
        )

    def write(self, session: Session) -> None:
        update_by_id(session, ScheduledItem, self.rows)


def settle(
    session: Session,
    clock: Clock,
    ids: Sequence[uuid.UUID],
    owner: str,
    lease: timedelta,
    decider: DecideBatch,
) -> Settled:
    now = clock.now()
    result = Settled()
    owned = _retake(session, ids, owner, now, lease)
    result.lost = len(ids) - len(owned)
    if not owned:
        return result
    items = session.scalars(
        sa.select(ScheduledItem).where(ScheduledItem.id.in_(owned)).order_by(ScheduledItem.due_at)
    ).all()
    people = session.execute(
        sa.select(Participant.id, Participant.status, Participant.burden_factor).where(
            Participant.id.in_({i.participant_id for i in items})
        )
    ).all()
    statuses: dict[uuid.UUID, str] = {pid: status for pid, status, _ in people}
    factors: dict[uuid.UUID, float] = {pid: factor for pid, _, factor in people}
    protocols = protocols_of_versions(session, {(i.study_id, i.protocol_version) for i in items})
    outcomes = _Outcomes(now)
    to_number, to_decide, prompts, cancelled, missed = [], [], [], [], []
    for item in items:
        status = statuses[item.participant_id]
        if status != ParticipantStatus.active:
            cancelled.append((item, f"participant is {status}"))
            continue
        protocol = protocols.get((item.study_id, item.protocol_version))
        problem = lateness_problem(item, protocol, now)
        if problem is None and item.kind == ItemKind.ema_prompt:
            thinned = thinning_reason(item, protocol, factors[item.participant_id])
            if thinned is not None:
                cancelled.append((item, thinned))
                continue
        to_number.append(item)
        if problem is not None:
            logger.warning("missed %s %s: %s", item.kind, item.slot_key, problem)
            missed.append((item, problem))
        elif item.kind == ItemKind.decision_point:
            to_decide.append(item)
        else:
            prompts.append((item, protocol))
    if to_number:
        _number(session, to_number)
    for item, reason in cancelled:
        outcomes.finish(item, ItemStatus.cancelled, reason)
    for item, reason in missed:
        outcomes.finish(item, ItemStatus.missed, reason)
        result.lags.append(_lag(item, "missed", now))
    result.cancelled, result.missed = len(cancelled), len(missed)
    outbox: list[NotificationValues] = []
    for item, protocol in prompts:
        outbox += _prompt_rows(item, protocol, now, factors[item.participant_id])
        outcomes.finish(item, ItemStatus.done, None)
        result.fired += 1
        result.lags.append(_lag(item, "fired", now))
    if to_decide:
        deliveries = decider(session, clock, to_decide)
        if len(deliveries) != len(to_decide):
            raise ValueError(
                f"the decider returned {len(deliveries)} results for "
                f"{len(to_decide)} decision points"
            )
        for item, delivery in zip(to_decide, deliveries, strict=True):
            if delivery is not None:
                outbox.append(intervention_notification(_origin_of(item), delivery, now))
            outcomes.finish(item, ItemStatus.done, None)
            result.fired += 1
            result.lags.append(_lag(item, "fired", now))
    session.flush()  # whatever the decider added to the session
    result.notifications = write_outbox(session, outbox)
    outcomes.write(session)
    return result


def _lag(item: ScheduledItem, outcome: str, now: datetime) -> tuple[str, str, float]:
    return str(item.kind), outcome, max((now - item.due_at).total_seconds(), 0.0)


def _origin_of(item: ScheduledItem) -> Origin:
    """What the outbox needs of the item whose push it writes."""
    return Origin(
        scheduled_item_id=item.id,
        participant_id=item.participant_id,
        study_id=item.study_id,
        questionnaire_id=item.questionnaire_id,
        due_at=item.due_at,
        expires_at=item.expires_at,
    )


def _prompt_rows(
    item: ScheduledItem, protocol: Protocol | None, now: datetime, burden_factor: float
) -> list[NotificationValues]:
    schedule = questionnaire = None
    if protocol is not None:
        try:
            # Fewer reminders while a fatigue episode is open (app/scheduling/burden.py).
            schedule = with_reminders_scaled(protocol.ema_schedule(item.source_id), burden_factor)
            questionnaire = protocol.questionnaire(item.questionnaire_id or schedule.questionnaire)
        except KeyError:
            logger.warning("EMA schedule %s not in protocol; prompting anyway", item.source_id)
    return prompt_notifications(_origin_of(item), schedule, questionnaire, now)


def run_due_batch(
    session_factory: sessionmaker[Session],
    clock: Clock,
    owner: str,
    decider: DecideBatch,
    *,
    lease: timedelta,
    batch_size: int,
) -> Settled:
    """Claim and settle one batch; returns what happened (nothing claimed: all zero)."""
    with session_scope(session_factory) as session:
        ids = claim_due(session, clock.now(), owner, lease, batch_size)
    if not ids:
        return Settled()
    try:
        with session_scope(session_factory) as session:
            return settle(session, clock, ids, owner, lease, decider)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise  # not the rows' fault: their leases expire and a later run settles them
        logger.exception("settling a batch of %d failed; settling one at a time", len(ids))
    # One bad row must not hold back the others: settle each alone, and record a row that
    # still fails as missed with the error, so it is not retried until its grace runs out.
    total = Settled()
    for item_id in ids:
        try:
            with session_scope(session_factory) as session:
                total.add(settle(session, clock, [item_id], owner, lease, decider))
        except Exception as exc:
            if is_database_unavailable(exc):
                raise
            logger.exception("settling %s failed", item_id)
            with session_scope(session_factory) as session:
                _record_failure(session, item_id, owner, clock.now(), exc)
            total.missed += 1
    return total


def _record_failure(
    session: Session, item_id: uuid.UUID, owner: str, now: datetime, exc: Exception
) -> None:
    session.execute(
        sa.update(ScheduledItem)
        .where(ScheduledItem.id == item_id, ScheduledItem.lease_owner == owner)
        .values(
            status=ItemStatus.missed,
            status_reason=f"failed: {type(exc).__name__}: {exc}"[:2000],
            lease_owner=None,
            lease_expires_at=None,
            completed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def expire_unanswered(session: Session, now: datetime) -> int:
    """Fired EMA prompts whose validity ran out unanswered are recorded as missed."""
    values = {
        "status": ItemStatus.missed,
        "status_reason": "expired: not answered before the prompt expired",
        "updated_at": now,
    }
    if session.get_bind().dialect.name == "sqlite":
        # SQLite, without statistics, prefers ix_scheduled_items_due (status = 'done') to the
        # partial index and reads every fired row of the study on every tick.
        result = session.execute(_EXPIRE_ON_SQLITE, {**values, "now": now})
    else:
        result = session.execute(
            sa.update(ScheduledItem)
            .where(
                # Literal, so PostgreSQL sees that the partial index ix_scheduled_items_unanswered
                # covers the query.
                sa.text(UNANSWERED),
                ScheduledItem.expires_at < now,
            )
            .values(values)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)


_EXPIRE_ON_SQLITE = sa.text(
    "UPDATE scheduled_items INDEXED BY ix_scheduled_items_unanswered"  # noqa: S608 - constants
    " SET status = :status, status_reason = :status_reason, updated_at = :updated_at"
    f" WHERE {UNANSWERED} AND expires_at < :now"
).bindparams(
    sa.bindparam("updated_at", type_=UTCDateTime()), sa.bindparam("now", type_=UTCDateTime())
)
